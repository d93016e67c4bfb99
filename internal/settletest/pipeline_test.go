package settletest_test

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/pgtest"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// usedAuthorizations counts the AuthorizationUsed events of the token per nonce.
func usedAuthorizations(t *testing.T, env *quidtest.Env) map[[32]byte]int {
	t.Helper()
	logs, err := env.Chain.Client().FilterLogs(context.Background(), ethereum.FilterQuery{
		FromBlock: common.Big0, Addresses: []common.Address{env.Token.Address},
		Topics: [][]common.Hash{{evm.AuthorizationUsedTopic}},
	})
	if err != nil {
		t.Fatal(err)
	}
	used := map[[32]byte]int{}
	for _, l := range logs {
		used[l.Topics[2]]++
	}
	return used
}

// sharedFacilitators returns two facilitators on env's chain, each with its own relayer key and
// its own connection pool to the PostgreSQL at dsn, as two instances behind a load balancer.
func sharedFacilitators(t *testing.T, env *quidtest.Env, dsn string, configure func(*facilitator.Config)) [2]*facilitator.Facilitator {
	t.Helper()
	accounts := env.Chain.Accounts()
	var facs [2]*facilitator.Facilitator
	for i, relayer := range []*ecdsa.PrivateKey{accounts[quidtest.Relayer].Key, accounts[9].Key} {
		db, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		cfg := facilitator.Config{Chain: env.Chain.Client(), ChainID: env.Chain.ChainID(), Relayer: relayer, Store: db,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		configure(&cfg)
		if facs[i], err = facilitator.New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	return facs
}

// Two facilitators with their own relayer keys share one PostgreSQL. Every payment of a stream
// of 1,000 is sent to both at once: each is settled exactly once, one caller hears success, and
// the chain moves exactly the sum of the payments.
func TestTwoFacilitatorsOnOnePostgresSettleEachPaymentOnce(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	env := quidtest.NewEnv(t, quidtest.Options{Devnet: devnet.Config{MaxTimestampLead: 30 * time.Second}})
	accounts := env.Chain.Accounts()
	facs := sharedFacilitators(t, env, dsn, func(c *facilitator.Config) { c.ReceiptTimeout = 30 * time.Second })
	const payments, price = 1000, 1000
	req := env.Requirements(price, env.Seller.Address)
	req.MaxTimeoutSeconds = 300 // blocks may run up to 30 s ahead of the clock in this test
	payers := []*ecdsa.PrivateKey{accounts[4].Key, accounts[5].Key, accounts[6].Key, accounts[7].Key, accounts[8].Key}
	sellerBefore := env.Balance(t, env.Seller.Address)

	var successes, failures atomic.Int64
	var reasonsMu sync.Mutex
	reasons := map[x402.Reason]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range payments {
		key := payers[i%len(payers)]
		p := quidtest.Payload(t, key, env.Token.Domain(), quidtest.Authorization(t, key, req), req)
		for _, f := range facs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				resp, err := f.Settle(context.Background(), p, req)
				switch {
				case err != nil:
					t.Errorf("settle: %v", err)
				case resp.Success:
					successes.Add(1)
				default:
					failures.Add(1)
					reasonsMu.Lock()
					reasons[resp.ErrorReason]++
					reasonsMu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if successes.Load() != payments || failures.Load() != payments {
		t.Fatalf("%d successes and %d failures %v for %d payments sent to two facilitators; want %d each", successes.Load(), failures.Load(), reasons, payments, payments)
	}
	used := usedAuthorizations(t, env)
	if len(used) != payments {
		t.Errorf("%d authorizations used on chain, want %d", len(used), payments)
	}
	for nonce, n := range used {
		if n != 1 {
			t.Errorf("authorization %x used %d times", nonce[:4], n)
		}
	}
	want, _ := sellerBefore.Add(evm.NewAmount(payments * price))
	if got := env.Balance(t, env.Seller.Address); got.Cmp(want) != 0 {
		t.Errorf("seller balance %s, want %s", got, want)
	}
}

// A payer holding 50 payments' worth signs 100 payments at once, from 100 goroutines. The value
// served never exceeds its balance, and everything served was settled.
func TestOnePayerCannotSpendMoreThanItHolds(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	const price = 10_000 // $0.01
	payerKey, _ := crypto.GenerateKey()
	payer := crypto.PubkeyToAddress(payerKey.PublicKey)
	env.Fund(t, payer, 50*price)

	pw, err := paywall.New(paywall.Config{Facilitator: env.Facilitator, ChainID: env.Chain.ChainID(), PayTo: env.Seller.Address, Assets: evm.NewRegistry(env.Token)})
	if err != nil {
		t.Fatal(err)
	}
	charge, err := pw.Charge(paywall.Route{Price: "$0.01"})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	srv := httptest.NewServer(charge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	w, err := wallet.New(wallet.Config{Key: payerKey, Assets: evm.NewRegistry(env.Token), Max: "0.01"})
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := w.Client().Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				if st, ok := wallet.Settlement(resp); !ok || !st.Success {
					t.Errorf("served without a successful settlement: %+v", st)
				}
				served.Add(1)
			case http.StatusPaymentRequired:
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	spent, _ := evm.NewAmount(50 * price).Sub(env.Balance(t, payer))
	t.Logf("served %d of 100, handler ran %d times, payer spent %s", served.Load(), handled.Load(), spent)
	if served.Load() > 50 || served.Load() == 0 {
		t.Fatalf("served %d requests to a payer holding 50 payments' worth", served.Load())
	}
	if spent.Cmp(evm.NewAmount(uint64(served.Load())*price)) != 0 {
		t.Errorf("payer spent %s for %d served requests of %d each: something was settled unserved or served unsettled", spent, served.Load(), price)
	}
	if handled.Load() > 50 {
		t.Errorf("the handler ran %d times: reservations should admit at most 50 payments", handled.Load())
	}
}

// Two facilitators drain one queue of deferred payments in PostgreSQL at the same time: every
// payment is settled exactly once, in batches, because each batch leases its items.
func TestTwoFacilitatorsDrainOneBatchQueue(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	env := quidtest.NewEnv(t, quidtest.Options{Devnet: devnet.Config{MaxTimestampLead: 30 * time.Second}})
	accounts := env.Chain.Accounts()
	facs := sharedFacilitators(t, env, dsn, func(c *facilitator.Config) {
		c.BatchSettler, c.BatchSize, c.MaxDeferred = devnet.BatchSettlerAddress, 25, evm.NewAmount(1<<40)
	})
	const payments, price = 200, 1000
	req := env.Requirements(price, env.Seller.Address)
	req.MaxTimeoutSeconds = 300
	ctx := context.Background()
	sellerBefore := env.Balance(t, env.Seller.Address)
	for i := range payments {
		key := accounts[4+i%5].Key
		auth := quidtest.Authorization(t, key, req)
		p := quidtest.Payload(t, key, env.Token.Domain(), auth, req)
		if v, err := facs[i%2].Defer(ctx, p, req); err != nil || !v.IsValid {
			t.Fatalf("defer %d: %+v %v", i, v, err)
		}
		facs[i%2].Release(ctx, store.Key(auth.ClaimKey(env.Chain.ChainID(), env.Token.Address)))
	}
	var wg sync.WaitGroup
	var attempted atomic.Int64
	for _, f := range facs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := f.SettleQueued(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
				attempted.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	used := usedAuthorizations(t, env)
	if len(used) != payments || attempted.Load() != payments {
		t.Errorf("%d authorizations used on chain, %d batch items attempted; want %d each", len(used), attempted.Load(), payments)
	}
	for nonce, n := range used {
		if n != 1 {
			t.Errorf("authorization %x used %d times", nonce[:4], n)
		}
	}
	want, _ := sellerBefore.Add(evm.NewAmount(payments * price))
	if got := env.Balance(t, env.Seller.Address); got.Cmp(want) != 0 {
		t.Errorf("seller balance %s, want %s", got, want)
	}
}
