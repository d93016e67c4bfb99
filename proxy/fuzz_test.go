package proxy_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/proxy"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// FuzzServeHTTP sends whatever a client might: any method, path, host and payment, capability,
// quote or admin header. The proxy answers each with a deliberate status, never a 500 and never
// a panic. The facilitator is unreachable, so a payment that decodes is answered 503.
func FuzzServeHTTP(f *testing.F) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	f.Cleanup(up.Close)
	yaml := `upstream: ` + up.URL + `
facilitator: http://127.0.0.1:1
chain_id: 31337
pay_to: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
secret: ${S}
routes:
  - path: /free/*
    free: true
  - host: "*.example.com"
    path: /paid
    method: GET
    price: $0.01
    capability: {uses: 2}
  - path: /quoted
    price: $0.02
    quotes: true
admin:
  path: /_quid
  token: ${T}
`
	vars := env(map[string]string{"S": secret, "T": "admin-token-0123456789"})
	cfg, err := proxy.Parse("fuzz.yaml", []byte(yaml), vars)
	if err != nil {
		f.Fatal(err)
	}
	db, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "quid.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	p, err := proxy.New(cfg, proxy.Options{Store: db})
	if err != nil {
		f.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	f.Add("GET", "/free/a", "x", "", "")
	f.Add("GET", "/paid", "a.example.com", x402.HeaderPaymentSignature, b64(`{"x402Version":2,"accepted":{},"payload":{}}`))
	f.Add("GET", "/paid", "a.example.com", x402.HeaderPaymentV1, "!!")
	f.Add("GET", "/paid", "a.example.com", paywall.HeaderCapability, "AgETcXVpZA")
	f.Add("GET", "/paid", "a.example.com", "Authorization", "Quid \x00")
	f.Add("POST", "/quoted", "x", paywall.HeaderQuote, "q")
	f.Add("POST", paywall.QuotePath, "x", "Content-Type", "application/json")
	f.Add("GET", paywall.DiscoveryPath, "x", "", "")
	f.Add("POST", "/_quid/payers/0xzz/block", "x", "Authorization", "Bearer admin-token-0123456789")
	f.Add("GET", "/_quid/payers?limit=-1", "x", "Authorization", "Bearer admin-token-0123456789")
	f.Add("GET", "/free/../paid", "x", "", "")
	f.Fuzz(func(t *testing.T, method, target, host, header, value string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "http://proxy.test"+target, strings.NewReader(value))
		if err != nil {
			return // not a request a server could receive
		}
		req.Host = host
		if header != "" {
			req.Header.Set(header, value)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusBadGateway && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s (Host %q, %s: %q): %d %s", method, target, host, header, value, rec.Code, rec.Body)
		}
	})
}
