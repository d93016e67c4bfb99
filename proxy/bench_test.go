package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/proxy"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// BenchmarkProxy measures what the proxy adds to a call of the same upstream. Each iteration
// makes one direct call and one call through the proxy, interleaved so that both see the same
// machine state, and the benchmark reports their ratio ("x-direct") with both latencies. The
// paid route includes verification and settlement on the devnet, which dominate it; payments
// are signed outside the timed window, and the devnet mines a block per settlement at once.
//
//	go test -run '^$' -bench BenchmarkProxy -benchtime 2s ./proxy
func BenchmarkProxy(b *testing.B) {
	// A block per settlement at once (timestamps run ahead of the clock): a real chain's block
	// time is not the proxy's cost.
	env := quidtest.NewEnv(b, quidtest.Options{Devnet: devnet.Config{MaxTimestampLead: -1}})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"city":"Lisbon","tempC":21,"sky":"clear"}`)
	}))
	b.Cleanup(up.Close)
	// Authorizations valid for an hour outlast the block timestamps running ahead of the clock.
	yaml := head(env, up.URL) + `secret: ${QUID_SECRET}
max_timeout: 1h
routes:
  - path: /free
    free: true
  - path: /paid
    price: $0.01
  - path: /token
    price: $0.01
    capability: {ttl: 1h}
`
	dir := b.TempDir()
	file := filepath.Join(dir, "quid.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	vars := env2(map[string]string{"QUID_SECRET": secret})
	cfg, err := proxy.Parse(file, []byte(yaml), vars)
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(context.Background(), benchDSN(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	p, err := proxy.New(cfg, proxy.Options{Facilitator: env.Facilitator, Store: db, LookupEnv: vars})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	call := func(req *http.Request) time.Duration {
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: status %d", req.URL.Path, resp.StatusCode)
		}
		return d
	}
	newReq := func(url string, header ...string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return req
	}

	// A capability token bought once, valid for the whole run.
	tokenResp, err := buyer(b, env).Get(srv.URL + "/token")
	if err != nil {
		b.Fatal(err)
	}
	tokenResp.Body.Close()
	token := tokenResp.Header.Get(paywall.HeaderCapability)
	if token == "" {
		b.Fatal("no capability token")
	}
	challenge := func() x402.PaymentRequirements {
		resp, err := client.Get(srv.URL + "/paid")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
		if err != nil {
			b.Fatal(err)
		}
		return pr.Accepts[0]
	}()

	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"unpaid", func() *http.Request { return newReq(srv.URL + "/free") }},
		{"paid", func() *http.Request {
			a := quidtest.Authorization(b, env.Buyer.Key, challenge)
			return newReq(srv.URL+"/paid", x402.HeaderPaymentSignature, quidtest.Header(b, quidtest.Payload(b, env.Buyer.Key, env.Token.Domain(), a, challenge)))
		}},
		{"capability", func() *http.Request { return newReq(srv.URL+"/token", paywall.HeaderCapability, token) }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var direct, proxied time.Duration
			iterations := 0
			for b.Loop() {
				req := tc.req()
				direct += call(newReq(up.URL + "/x"))
				proxied += call(req)
				iterations++
			}
			n := float64(iterations)
			b.ReportMetric(float64(direct.Nanoseconds())/n, "direct-ns/op")
			b.ReportMetric(float64(proxied.Nanoseconds())/n, "proxy-ns/op")
			b.ReportMetric(float64(proxied)/float64(direct), "x-direct")
		})
	}
}

// benchDSN is the store the benchmark runs on: a SQLite file by default, as quid proxy
// uses; QUID_BENCH_STORE=memory measures without the disk.
func benchDSN(dir string) string {
	if os.Getenv("QUID_BENCH_STORE") == "memory" {
		return ":memory:"
	}
	return filepath.Join(dir, "quid.db")
}
