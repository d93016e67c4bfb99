package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// The test binary doubles as the quid binary: with QUID_TEST_MAIN set it runs the command in
// its arguments, so crash tests can kill a real quid process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("QUID_TEST_MAIN") == "1" {
		ctx, stop := signalContext()
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestFacilitatorKilledMidSettlementLosesNothing kills the facilitator process with SIGKILL at
// random moments while payments are being settled, 20 times, restarting it each time on the
// same data directory. Afterwards every payment that was served is confirmed exactly once on
// chain, every authorization the chain used is recorded as confirmed, and nothing is left
// unresolved.
func TestFacilitatorKilledMidSettlementLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	chain, err := devnet.Start(devnet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	rpcURL, err := chain.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accounts := chain.Accounts()
	token := evm.DevToken(chain.ChainID())
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "relayer.key")
	if err := wallet.WriteKeyFile(keyFile, accounts[relayerAccount].Key); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	facURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"facilitator", "--rpc", rpcURL, "--key-file", keyFile, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data", filepath.Join(dir, "data"), "--receipt-timeout", "2s"}

	// The paid API keeps its claims in its own SQLite store, so it too can be restarted.
	claimsPath := filepath.Join(dir, "paywall", "claims.db")
	newAPI := func() (*httptest.Server, *store.DB) {
		claims, err := store.Open(context.Background(), claimsPath)
		if err != nil {
			t.Fatal(err)
		}
		pw, err := paywall.New(paywall.Config{Facilitator: facilitator.NewClient(facURL), ChainID: chain.ChainID(),
			PayTo: accounts[sellerAccount].Address, Assets: evm.NewRegistry(token), Claims: claims})
		if err != nil {
			t.Fatal(err)
		}
		charge, err := pw.Charge(paywall.Route{Price: "$0.01"})
		if err != nil {
			t.Fatal(err)
		}
		return httptest.NewServer(charge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "paid") }))), claims
	}
	api, claims := newAPI()

	// Buyers pay continuously from several goroutines; the facilitator dies under them. Every
	// payment header sent is recorded with whether it bought a response.
	rec := &recorder{served: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for b := 4; b < 8; b++ {
		w, err := wallet.New(wallet.Config{Key: accounts[b].Key, Assets: evm.NewRegistry(token), Max: "0.01",
			Base: rec, PendingWait: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// No client timeout: a buyer that hangs up while its payment settles loses the response
		// (the payment-identifier extension is the remedy), which is not what this test is about.
		client := w.Client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(api.URL)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "QUID_TEST_MAIN=1")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if resp, err := http.Get(facURL + "/healthz"); err == nil {
				resp.Body.Close()
				return cmd
			}
		}
		t.Fatal("facilitator did not come up")
		return nil
	}
	for round := 0; round < 20; round++ {
		cmd := start()
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	close(stop)
	wg.Wait()
	final := start()
	defer func() { final.Process.Signal(syscall.SIGTERM); final.Wait() }()

	// Give the restarted facilitator's reconciler the last word, as it would have in production:
	// run it in process on the same store, with a clock past the abandonment grace.
	db, err := store.Open(context.Background(), filepath.Join(dir, "data", "quid.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	reconciler, err := facilitator.New(facilitator.Config{Chain: chain.Client(), ChainID: chain.ChainID(), Relayer: accounts[relayerAccount].Key, Store: db, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := reconciler.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		open, _ := db.List(context.Background(), store.Filter{States: []store.State{store.StateVerified, store.StateSubmitted, store.StateUnknown}})
		if len(open) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if open, _ := db.List(context.Background(), store.Filter{States: []store.State{store.StateVerified, store.StateSubmitted, store.StateUnknown}}); len(open) != 0 {
		for _, s := range open {
			t.Errorf("stuck: %s tx %s updated %s", s.State, s.Tx, s.Updated)
		}
	}

	// The paid API restarts too. A buyer whose request died with the facilitator presents the
	// same payment again to the new process: if its settlement went through, that collects the
	// response; if it never did, the still-valid authorization pays now.
	api.Close()
	claims.Close()
	api, claims = newAPI()
	defer func() { api.Close(); claims.Close() }()
	responses := rec.snapshot()
	servedFirst := 0
	for header, n := range responses {
		servedFirst += n
		if n > 0 {
			continue
		}
		req, _ := http.NewRequest(http.MethodGet, api.URL, nil)
		req.Header.Set(x402.HeaderPaymentSignature, header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			responses[header] = 1
		}
	}

	// Every authorization the chain used bought exactly one response, and every other none.
	logs, err := chain.Client().FilterLogs(context.Background(), ethereum.FilterQuery{
		FromBlock: common.Big0, Addresses: []common.Address{token.Address},
		Topics: [][]common.Hash{{evm.AuthorizationUsedTopic}},
	})
	if err != nil {
		t.Fatal(err)
	}
	used := map[[32]byte]bool{}
	for _, l := range logs {
		used[l.Topics[2]] = true
	}
	for header, n := range responses {
		nonce := nonceOf(t, header)
		switch {
		case used[nonce] && n != 1:
			t.Errorf("authorization %x paid on chain bought %d responses", nonce[:4], n)
		case !used[nonce] && n != 0:
			t.Errorf("authorization %x not paid on chain bought %d responses", nonce[:4], n)
		}
	}
	all, err := db.List(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, s := range all {
		if s.State == store.StateConfirmed {
			confirmed++
		}
	}
	if confirmed != len(used) {
		t.Errorf("%d authorizations used on chain, %d settlements confirmed in the store", len(used), confirmed)
	}
	t.Logf("%d payments signed, %d paid on chain, %d served at once, %d served when presented again",
		len(responses), len(used), servedFirst, len(used)-servedFirst)
	if len(used) == 0 {
		t.Fatal("no payment settled at all; the test proved nothing")
	}
}

// recorder passes requests on and counts, per payment header, the responses it bought.
type recorder struct {
	mu     sync.Mutex
	served map[string]int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	h := req.Header.Get(x402.HeaderPaymentSignature)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if h != "" {
		r.mu.Lock()
		if err == nil && resp.StatusCode == http.StatusOK {
			r.served[h]++
		} else if _, ok := r.served[h]; !ok {
			r.served[h] = 0
		}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.served)
}

func nonceOf(t *testing.T, header string) [32]byte {
	t.Helper()
	p, err := x402.DecodePaymentSignature(header)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := p.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	n, err := evm.ParseNonce(ex.Authorization.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
