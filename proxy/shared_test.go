package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/pgtest"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/proxy"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two proxies behind one load balancer share a store, on SQLite (one file) and PostgreSQL: one
// payment sent to both at once is served once, a capability token's uses are counted across
// both, and a payer blocked through one proxy's admin API is refused by the other.
func TestProxiesSharingAStore(t *testing.T) {
	t.Parallel()
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "quid.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.dsn(t)
			env := quidtest.NewEnv(t, quidtest.Options{})
			up := newUpstream(t, nil)
			const token = "admin-token-0123456789"
			yaml := head(env, up.URL) + `secret: ${QUID_SECRET}
routes:
  - path: /r
    price: $0.01
  - path: /t
    price: $0.01
    capability: {uses: 4}
admin:
  path: /_quid
  token: ${ADMIN_TOKEN}
`
			vars := env2(map[string]string{"QUID_SECRET": secret, "ADMIN_TOKEN": token})
			file := filepath.Join(t.TempDir(), "quid.yaml")
			if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var urls []string
			for range 2 {
				cfg, err := proxy.Parse(file, []byte(yaml), vars)
				if err != nil {
					t.Fatal(err)
				}
				db, err := store.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				p, err := proxy.New(cfg, proxy.Options{Facilitator: env.Facilitator, Store: db, LookupEnv: vars})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(p)
				t.Cleanup(srv.Close)
				urls = append(urls, srv.URL)
			}

			// One payment, many copies, both proxies.
			header := signed(t, env, urls[0]+"/r")
			before := env.Balance(t, env.Buyer.Address)
			var served atomic.Int64
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					resp, err := http.DefaultClient.Do(request(t, http.MethodGet, urls[i%2]+"/r", x402.HeaderPaymentSignature, header))
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						served.Add(1)
					case 402:
					default:
						t.Errorf("status %d", resp.StatusCode)
					}
				})
			}
			wg.Wait()
			want, _ := before.Sub(evm.NewAmount(price))
			if served.Load() != 1 || up.hits.Load() != 1 {
				t.Fatalf("one payment served %d times, upstream hit %d times", served.Load(), up.hits.Load())
			}
			if got := env.Balance(t, env.Buyer.Address); got.Cmp(want) != 0 {
				t.Fatalf("buyer balance %s, want %s", got, want)
			}

			// A token bought on one proxy, spent on both: 4 uses in all.
			resp, _ := get(t, buyer(t, env), request(t, http.MethodGet, urls[0]+"/t"))
			tok := resp.Header.Get(paywall.HeaderCapability)
			if tok == "" {
				t.Fatal("no capability token")
			}
			uses := 0
			for i := range 8 {
				resp, _ := get(t, http.DefaultClient, request(t, http.MethodGet, urls[i%2]+"/t", paywall.HeaderCapability, tok))
				if resp.StatusCode == 200 {
					uses++
				}
			}
			if uses != 4 {
				t.Fatalf("a 4-use token served %d requests across two proxies", uses)
			}

			// Blocked through proxy 0, refused by proxy 1.
			if resp, body := get(t, http.DefaultClient, request(t, http.MethodPost, urls[0]+"/_quid/payers/"+env.Buyer.Address.Hex()+"/block", "Authorization", "Bearer "+token)); resp.StatusCode != 200 {
				t.Fatalf("block: %d %s", resp.StatusCode, body)
			}
			before = env.Balance(t, env.Buyer.Address)
			if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, urls[1]+"/r", x402.HeaderPaymentSignature, signed(t, env, urls[1]+"/r"))); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("blocked payer on the other proxy: %d %s", resp.StatusCode, body)
			}
			if got := env.Balance(t, env.Buyer.Address); got.Cmp(before) != 0 {
				t.Fatal("a blocked payer's payment was settled")
			}
		})
	}
}
