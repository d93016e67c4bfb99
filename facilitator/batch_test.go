package facilitator_test

import (
	"context"
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// batchEnv is a devnet whose facilitator settles deferred payments through QuidBatchSettler.
func batchEnv(t *testing.T, perItemGas uint64) (*quidtest.Env, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env := quidtest.NewEnv(t, quidtest.Options{Facilitator: func(c *facilitator.Config) {
		c.BatchSettler = quidtestBatchSettler
		c.Store = db
		c.PerItemGas = perItemGas
		c.MaxDeferred = evm.NewAmount(1_000_000)
	}})
	return env, db
}

var quidtestBatchSettler = common.HexToAddress("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")

// deferPayment signs a payment of amount from key and defers it, failing the test if refused.
func deferPayment(t *testing.T, env *quidtest.Env, key *ecdsa.PrivateKey, amount uint64) (*x402.PaymentPayload, x402.PaymentRequirements, store.Key) {
	t.Helper()
	req := env.Requirements(amount, env.Seller.Address)
	auth := quidtest.Authorization(t, key, req)
	p := quidtest.Payload(t, key, env.Token.Domain(), auth, req)
	v, err := env.Facilitator.Defer(context.Background(), p, req)
	if err != nil || !v.IsValid {
		t.Fatalf("defer: %+v %v", v, err)
	}
	return p, req, store.Key(auth.ClaimKey(env.Chain.ChainID(), env.Token.Address))
}

func TestDeferredPaymentsSettleInOneBatch(t *testing.T) {
	t.Parallel()
	env, db := batchEnv(t, 0)
	ctx := context.Background()
	accounts := env.Chain.Accounts()
	const n, amount = 30, 1000
	sellerBefore := env.Balance(t, env.Seller.Address)
	var keys []store.Key
	for i := range n {
		_, _, key := deferPayment(t, env, accounts[4+i%5].Key, amount)
		keys = append(keys, key)
	}
	// Held payments wait for their release.
	if got, err := env.Facilitator.SettleQueued(ctx); err != nil || got != 0 {
		t.Fatalf("settled %d held payments (%v)", got, err)
	}
	for _, k := range keys {
		if err := env.Facilitator.Release(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := env.Facilitator.SettleQueued(ctx); err != nil || got != n {
		t.Fatalf("settled %d of %d (%v)", got, n, err)
	}
	txs := map[string]bool{}
	for _, k := range keys {
		s, err := db.Get(ctx, k)
		if err != nil || s.State != store.StateConfirmed {
			t.Fatalf("settlement %+v, %v", s, err)
		}
		txs[s.Tx] = true
	}
	if len(txs) != 1 {
		t.Errorf("%d transactions for one batch", len(txs))
	}
	want, _ := sellerBefore.Add(evm.NewAmount(n * amount))
	if got := env.Balance(t, env.Seller.Address); got.Cmp(want) != 0 {
		t.Errorf("seller balance %s, want %s", got, want)
	}
	for tx := range txs {
		r, err := env.Chain.Client().TransactionReceipt(ctx, common.HexToHash(tx))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("batch of %d: %d gas, %d per payment", n, r.GasUsed, r.GasUsed/n)
	}
	// Nothing is left to settle, and a settled payment cannot be deferred or settled again.
	if got, _ := env.Facilitator.SettleQueued(ctx); got != 0 {
		t.Errorf("settled %d more", got)
	}
}

func TestCancelledDeferralsAreNeverSettled(t *testing.T) {
	t.Parallel()
	env, db := batchEnv(t, 0)
	ctx := context.Background()
	p, req, key := deferPayment(t, env, env.Buyer.Key, 1000)
	if ok, err := env.Facilitator.Cancel(ctx, key); !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if got, _ := env.Facilitator.SettleQueued(ctx); got != 0 {
		t.Fatalf("settled %d cancelled payments", got)
	}
	if _, err := db.Get(ctx, key); err != store.ErrNotFound {
		t.Fatalf("cancelled settlement still stored: %v", err)
	}
	// The authorization moved nothing and is free again.
	if v, err := env.Facilitator.Defer(ctx, p, req); err != nil || !v.IsValid {
		t.Fatalf("deferring the cancelled payment again: %+v %v", v, err)
	}
	// Deferring or settling a queued payment a second time is refused.
	if v, _ := env.Facilitator.Defer(ctx, p, req); v.IsValid || v.InvalidReason != x402.ReasonExactNonceUsed {
		t.Errorf("second deferral: %+v", v)
	}
	if s, _ := env.Facilitator.Settle(ctx, p, req); s.Success || s.ErrorReason != x402.ReasonExactNonceUsed {
		t.Errorf("settling a queued payment directly: %+v", s)
	}
}

func TestBatchOutcomesPerPayment(t *testing.T) {
	t.Parallel()
	env, db := batchEnv(t, 0)
	ctx := context.Background()
	accounts := env.Chain.Accounts()
	_, _, good := deferPayment(t, env, accounts[4].Key, 1000)
	// The payer cancels one authorization after it was deferred: the batch must not fail for it,
	// and it must not count as paid.
	req := env.Requirements(1000, env.Seller.Address)
	auth := quidtest.Authorization(t, accounts[5].Key, req)
	p := quidtest.Payload(t, accounts[5].Key, env.Token.Domain(), auth, req)
	if v, err := env.Facilitator.Defer(ctx, p, req); err != nil || !v.IsValid {
		t.Fatal(v, err)
	}
	cancelled := store.Key(auth.ClaimKey(env.Chain.ChainID(), env.Token.Address))
	env.Cancel(t, accounts[5].Key, auth)
	// Two equal payments (same payer, payee and value) are told apart by their nonces.
	_, _, twinA := deferPayment(t, env, accounts[6].Key, 1000)
	_, _, twinB := deferPayment(t, env, accounts[6].Key, 1000)
	for _, k := range []store.Key{good, cancelled, twinA, twinB} {
		env.Facilitator.Release(ctx, k)
	}
	if got, err := env.Facilitator.SettleQueued(ctx); err != nil || got != 4 {
		t.Fatalf("settled %d (%v)", got, err)
	}
	for _, tc := range []struct {
		name  string
		key   store.Key
		state store.State
	}{{"valid", good, store.StateConfirmed}, {"cancelled", cancelled, store.StateFailed}, {"twin a", twinA, store.StateConfirmed}, {"twin b", twinB, store.StateConfirmed}} {
		s, err := db.Get(ctx, tc.key)
		if err != nil || s.State != tc.state {
			t.Errorf("%s: %+v %v, want %s", tc.name, s, err, tc.state)
		}
	}
}

func TestBatchTooStarvedOfGasRequeuesEverything(t *testing.T) {
	t.Parallel()
	env, db := batchEnv(t, 20_000) // less than a transfer needs
	ctx := context.Background()
	_, _, key := deferPayment(t, env, env.Buyer.Key, 1000)
	env.Facilitator.Release(ctx, key)
	before := env.Balance(t, env.Buyer.Address)
	if _, err := env.Facilitator.SettleQueued(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := db.Get(ctx, key)
	if err != nil || s.State != store.StateQueued || s.Tx != "" {
		t.Fatalf("after a batch that could not pay it: %+v %v; want it queued again", s, err)
	}
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(before) != 0 {
		t.Fatal("value moved for a payment the batch did not settle")
	}
}

func TestDeferredCreditIsCappedPerPayer(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := quidtest.NewEnv(t, quidtest.Options{Facilitator: func(c *facilitator.Config) {
		c.BatchSettler, c.Store, c.MaxDeferred = quidtestBatchSettler, db, evm.NewAmount(2500)
	}})
	ctx := context.Background()
	_, _, a := deferPayment(t, env, env.Buyer.Key, 1000)
	_, _, b := deferPayment(t, env, env.Buyer.Key, 1000)
	req := env.Requirements(1000, env.Seller.Address)
	third := quidtest.Payload(t, env.Buyer.Key, env.Token.Domain(), quidtest.Authorization(t, env.Buyer.Key, req), req)
	if v, err := env.Facilitator.Defer(ctx, third, req); err != nil || v.IsValid || v.InvalidReason != x402.ReasonDeferralLimit {
		t.Fatalf("a deferral past the cap: %+v %v", v, err)
	}
	// Another payer has its own credit.
	deferPayment(t, env, env.Chain.Accounts()[5].Key, 1000)
	// Once the first two settle, the payer's credit is free again; the refused payment was not
	// consumed and can still be deferred.
	env.Facilitator.Release(ctx, a)
	env.Facilitator.Release(ctx, b)
	if _, err := env.Facilitator.SettleQueued(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := env.Facilitator.Defer(ctx, third, req); err != nil || !v.IsValid {
		t.Fatalf("deferral after the credit was repaid: %+v %v", v, err)
	}
}

func faultyBatchEnv(t *testing.T) (*quidtest.Env, *quidtest.Faults, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env, faults := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: func(c *facilitator.Config) {
		c.BatchSettler, c.Store, c.MaxDeferred = quidtestBatchSettler, db, evm.NewAmount(1_000_000)
		c.ReceiptTimeout = 300 * time.Millisecond
	}})
	return env, faults, db
}

func TestBatchFailureMidway(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault quidtest.Fault
		on    quidtest.Method
		// want is the state right after SettleQueued; reconciling must then confirm it.
		want store.State
	}{
		{"receipt never seen in time", quidtest.Fault{Err: ethereumNotFound}, quidtest.TransactionReceipt, store.StateUnknown},
		{"broadcast answer lost after the node took it", quidtest.Fault{Err: quidtest.TimeoutError(), After: true, Times: 1}, quidtest.SendTransaction, store.StateConfirmed},
		{"broadcast refused by the node", quidtest.Fault{Err: quidtest.Rejection("nonce too low"), Times: 1}, quidtest.SendTransaction, store.StateQueued},
		{"connection refused at broadcast", quidtest.Fault{Err: quidtest.TransportError(), Times: 1}, quidtest.SendTransaction, store.StateQueued},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, faults, db := faultyBatchEnv(t)
			ctx := context.Background()
			var keys []store.Key
			for i := range 3 {
				_, _, k := deferPayment(t, env, env.Chain.Accounts()[4+i].Key, 1000)
				env.Facilitator.Release(ctx, k)
				keys = append(keys, k)
			}
			sellerBefore := env.Balance(t, env.Seller.Address)
			faults.Set(tc.on, tc.fault)
			env.Facilitator.SettleQueued(ctx)
			for _, k := range keys {
				if s, _ := db.Get(ctx, k); s == nil || s.State != tc.want {
					t.Fatalf("after the fault: %+v, want %s", s, tc.want)
				}
			}
			faults.Heal()
			// The reconciler and the next batch finish the job; nothing is paid twice.
			allConfirmed := func() bool {
				for _, k := range keys {
					if s, _ := db.Get(ctx, k); s == nil || s.State != store.StateConfirmed {
						return false
					}
				}
				return true
			}
			for deadline := time.Now().Add(10 * time.Second); !allConfirmed() && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if _, err := env.Facilitator.Reconcile(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := env.Facilitator.SettleQueued(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range keys {
				if s, _ := db.Get(ctx, k); s == nil || s.State != store.StateConfirmed {
					t.Fatalf("finally: %+v, want confirmed", s)
				}
			}
			want, _ := sellerBefore.Add(evm.NewAmount(3000))
			if got := env.Balance(t, env.Seller.Address); got.Cmp(want) != 0 {
				t.Fatalf("seller balance %s, want %s: each payment exactly once", got, want)
			}
		})
	}
}

var ethereumNotFound = ethereum.NotFound
