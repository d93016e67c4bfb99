package paywall_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/pgtest"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Two seller instances behind one address share a PostgreSQL store: a one-use token is served
// once across both, a spend cap holds across both, and a quote made by one is paid at the other.
func TestInstancesShareOnePostgres(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	dsn := pgtest.DSN(t)
	routes := []paywall.Route{
		{Method: "GET", Path: "/token", Price: "$0.01", Capability: &paywall.CapabilityPolicy{Uses: 1}},
		{Method: "GET", Path: "/capped", Price: "$0.01", Policy: &paywall.Policy{Spend: paywall.SpendLimit{Max: "$0.02", Window: time.Hour}}},
		{Method: "POST", Path: "/quoted", Price: "$0.05", Quote: &paywall.QuotePolicy{}},
	}
	var runs atomic.Int64
	urls := make([]string, 2)
	for i := range urls {
		db, err := store.Open(t.Context(), dsn) // each instance its own connection pool
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		pw, err := paywall.New(paywall.Config{Facilitator: env.Facilitator, ChainID: env.Chain.ChainID(), PayTo: env.Seller.Address,
			Assets: evm.NewRegistry(env.Token), Claims: db, Secret: secret, Records: db, Spend: db, Uses: db})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle(paywall.QuotePath, pw.QuoteHandler())
		for _, rt := range routes {
			mw, err := pw.Charge(rt)
			if err != nil {
				t.Fatal(err)
			}
			mux.Handle(rt.Method+" "+rt.Path, mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				w.Write([]byte("ok"))
			})))
		}
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	// The helpers of shop, pointed at one instance or the other.
	at := func(i int) *shop { return &shop{Env: env, srv: &httptest.Server{URL: urls[i%2]}} }

	t.Run("one-use token", func(t *testing.T) {
		req := at(0).offer(t, "GET", "/token", nil).Accepts[0]
		resp, body := at(0).do(t, "GET", "/token", paid(at(0).pay(t, env.Buyer.Key, req, nil)))
		requireStatus(t, resp, body, http.StatusOK, "")
		token := resp.Header.Get(paywall.HeaderCapability)
		var served atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, _ := at(i).do(t, "GET", "/token", withToken(token)); resp.StatusCode == http.StatusOK {
					served.Add(1)
				}
			}()
		}
		wg.Wait()
		if served.Load() != 1 {
			t.Fatalf("a one-use token served %d times across two instances", served.Load())
		}
	})

	t.Run("spend cap", func(t *testing.T) {
		key, _ := (&shop{Env: env}).newBuyer(t)
		req := at(0).offer(t, "GET", "/capped", nil).Accepts[0]
		var ok, forbidden atomic.Int64
		var wg sync.WaitGroup
		for i := range 6 {
			sig := at(i).pay(t, key, req, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch resp, _ := at(i).do(t, "GET", "/capped", paid(sig)); resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusForbidden:
					forbidden.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 2 || forbidden.Load() != 4 {
			t.Fatalf("%d served and %d refused under a $0.02 cap, want 2 and 4", ok.Load(), forbidden.Load())
		}
	})

	t.Run("quote made by one, paid at the other", func(t *testing.T) {
		resp, q := at(0).quote(t, paywall.QuoteRequest{Method: "POST", Path: "/quoted", Task: "x"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("quote: %d", resp.StatusCode)
		}
		header := map[string]string{paywall.HeaderQuote: q.ID, x402.HeaderPaymentSignature: at(1).pay(t, env.Buyer.Key, q.Accepts[0], quoteNonce(t, q))}
		resp, body := at(1).do(t, "POST", "/quoted", header)
		requireStatus(t, resp, body, http.StatusOK, "")
		resp, body = at(0).do(t, "POST", "/quoted", header)
		requireStatus(t, resp, body, http.StatusPaymentRequired, x402.ReasonExactNonceUsed)
	})
}
