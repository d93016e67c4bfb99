package proxy_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

const secret = "a-test-secret-of-at-least-32-bytes-long"

// A paid request earns a capability token; later requests carrying it are served without
// paying until its uses run out, and the token never reaches the upstream.
func TestCapabilityTokenRoute(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+`secret: ${QUID_SECRET}
routes:
  - path: /api/*
    method: GET
    price: $0.01
    capability: {ttl: 10m, uses: 3}
`, map[string]string{"QUID_SECRET": secret})
	before := env.Balance(t, env.Buyer.Address)
	resp, body := get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/api/a"))
	token := resp.Header.Get(paywall.HeaderCapability)
	if resp.StatusCode != 200 || token == "" {
		t.Fatalf("paid: %d %s, token %q", resp.StatusCode, body, token)
	}
	paid, _ := before.Sub(evm.NewAmount(price))
	for i, h := range []string{paywall.HeaderCapability, "Authorization", paywall.HeaderCapability} {
		value := token
		if h == "Authorization" {
			value = "Quid " + token
		}
		resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/api/b", h, value))
		if resp.StatusCode != 200 || !strings.Contains(body, `"path":"/api/b"`) {
			t.Fatalf("use %d with %s: %d %s", i+1, h, resp.StatusCode, body)
		}
		seen := up.last(t)
		if seen.Header.Get(paywall.HeaderCapability) != "" || seen.Header.Get("Authorization") != "" {
			t.Fatalf("capability token forwarded upstream: %v", seen.Header)
		}
	}
	resp, body = get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/api/c", paywall.HeaderCapability, token))
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("fourth use of a 3-use token: %d %s", resp.StatusCode, body)
	}
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(paid) != 0 {
		t.Fatalf("buyer balance %s, want %s (one payment)", got, paid)
	}
}

// Concurrent requests on one token take exactly its uses.
func TestCapabilityTokenUsesUnderConcurrency(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+"secret: ${QUID_SECRET}\nroutes:\n  - path: /r\n    price: $0.01\n    capability: {uses: 5}\n",
		map[string]string{"QUID_SECRET": secret})
	resp, _ := get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/r"))
	token := resp.Header.Get(paywall.HeaderCapability)
	if token == "" {
		t.Fatal("no token")
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(request(t, http.MethodGet, p.srv.URL+"/r", paywall.HeaderCapability, token))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			} else if resp.StatusCode != http.StatusPaymentRequired {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d requests served on a 5-use token", ok.Load())
	}
}

// GET /.well-known/x402 lists the paid routes with their terms, as the file declares them.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+`routes:
  - path: /weather
    method: GET
    price: $0.01
    description: Current weather
    mime_type: application/json
    settle: before
    terms: {resale: forbidden, data_use: none}
    output_schema:
      type: object
      properties: {sky: {type: string}}
  - path: /free
    free: true
`, nil)
	resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+paywall.DiscoveryPath))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var doc paywall.DiscoveryDocument
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Resources) != 1 {
		t.Fatalf("resources %s", body)
	}
	r := doc.Resources[0]
	if r.Path != "/weather" || r.Method != "GET" || r.Description != "Current weather" || r.Settle != "before" ||
		r.Terms == nil || r.Terms.Resale != "forbidden" || !strings.Contains(string(r.OutputSchema), `"sky"`) ||
		len(r.Accepts) != 1 || r.Accepts[0].Amount != "10000" {
		t.Fatalf("resource %s", body)
	}
	if up.hits.Load() != 0 {
		t.Fatal("discovery reached the upstream")
	}
}

// settle: commit streams a paid event stream: settled when the upstream commits its
// response, then passed through event by event.
func TestSettleOnCommitStreams(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	})
	p := serve(t, env, head(env, up.URL)+"routes:\n  - path: /events\n    price: $0.01\n    settle: commit\n", nil)
	before := env.Balance(t, env.Buyer.Address)
	resp, err := buyer(t, env).Do(request(t, http.MethodGet, p.srv.URL+"/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event %q, %v (status %d)", line, err, resp.StatusCode)
	}
	close(release)
	if rest, _ := io.ReadAll(rd); string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
	want, _ := before.Sub(evm.NewAmount(price))
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s", got, want)
	}
}

// Access policy from the file: a payer outside allow_payers is refused 403 and its valid
// payment is not settled.
func TestAccessPolicyFromFile(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+`access:
  allow_payers: [0x000000000000000000000000000000000000dEaD]
routes:
  - path: /r
    price: $0.01
  - path: /open
    price: $0.01
    access: {rate: 100/s}
`, nil)
	before := env.Balance(t, env.Buyer.Address)
	header := signed(t, env, p.srv.URL+"/r")
	resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/r", x402.HeaderPaymentSignature, header))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, string(paywall.ReasonPayerNotAllowed)) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(before) != 0 || up.hits.Load() != 0 {
		t.Fatal("a refused payer's payment was settled or forwarded")
	}
	// A route's own access section replaces the file's.
	if resp, body := get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/open")); resp.StatusCode != 200 {
		t.Fatalf("route policy: %d %s", resp.StatusCode, body)
	}
}

// Prices from the file: a pricing hook prices each request (its failure is 503, never free),
// known buyers pay known_price, and a quote binds a price to one request.
func TestPricingFromFile(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	var hookDown atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req paywall.PricingHookRequest
		if hookDown.Load() || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		// A price per path segment: /hooked/a/b costs two cents.
		fmt.Fprintf(w, `{"price":"$0.0%d"}`, strings.Count(strings.TrimPrefix(req.Path, "/hooked"), "/"))
	}))
	t.Cleanup(hook.Close)
	p := serve(t, env, head(env, up.URL)+fmt.Sprintf(`secret: ${QUID_SECRET}
routes:
  - path: /hooked/*
    pricing_hook: %s
  - path: /tiered
    price: $0.02
    known_price: $0.01
  - path: /quoted
    method: POST
    price: $0.03
    quotes: true
`, hook.URL), map[string]string{"QUID_SECRET": secret})
	amount := func(resp *http.Response) string {
		t.Helper()
		pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
		if err != nil {
			t.Fatalf("status %d, no terms: %v", resp.StatusCode, err)
		}
		return pr.Accepts[0].Amount
	}

	resp, _ := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/hooked/a/b"))
	if got := amount(resp); got != "20000" {
		t.Fatalf("hooked price %s, want 20000", got)
	}
	hookDown.Store(true)
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/hooked/a")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("pricing hook down: %d %s", resp.StatusCode, body)
	}
	if up.hits.Load() != 0 {
		t.Fatal("upstream reached without a price")
	}

	// Unknown until it has paid once.
	hint := []string{paywall.HeaderPayer, env.Buyer.Address.Hex()}
	resp, _ = get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/tiered", hint...))
	if got := amount(resp); got != "20000" {
		t.Fatalf("unknown buyer's price %s", got)
	}
	if resp, body := get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/tiered")); resp.StatusCode != 200 {
		t.Fatalf("paying: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/tiered", hint...))
	if got := amount(resp); got != "10000" {
		t.Fatalf("known buyer's price %s, want 10000", got)
	}

	// A quote, paid with the nonce it names.
	qreq := request(t, http.MethodPost, p.srv.URL+paywall.QuotePath, "Content-Type", "application/json")
	qreq.Body = io.NopCloser(strings.NewReader(`{"method":"POST","path":"/quoted","task":"summarise"}`))
	resp, body := get(t, http.DefaultClient, qreq)
	var q paywall.Quote
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &q) != nil || q.Price != "30000" || len(q.Accepts) == 0 {
		t.Fatalf("quote: %d %s", resp.StatusCode, body)
	}
	auth := quidtest.Authorization(t, env.Buyer.Key, q.Accepts[0])
	nonce, err := hex.DecodeString(strings.TrimPrefix(q.Nonce, "0x"))
	if err != nil || len(nonce) != 32 {
		t.Fatalf("quote nonce %q", q.Nonce)
	}
	copy(auth.Nonce[:], nonce)
	header := quidtest.Header(t, quidtest.Payload(t, env.Buyer.Key, env.Token.Domain(), auth, q.Accepts[0]))
	resp, body = get(t, http.DefaultClient, request(t, http.MethodPost, p.srv.URL+"/quoted", x402.HeaderPaymentSignature, header, paywall.HeaderQuote, q.ID))
	if resp.StatusCode != 200 {
		t.Fatalf("paying the quote: %d %s", resp.StatusCode, body)
	}
	if seen := up.last(t); seen.Header.Get(paywall.HeaderQuote) != "" {
		t.Fatal("quote header forwarded upstream")
	}
}

// A spend limit from the file holds under concurrency: one payer sending many payments at once
// gets exactly what the limit allows, and pays for nothing more.
func TestSpendLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+"access:\n  spend: {max: $0.03, window: 24h}\nroutes:\n  - path: /r\n    price: $0.01\n", nil)
	headers := make([]string, 10)
	for i := range headers {
		headers[i] = signed(t, env, p.srv.URL+"/r")
	}
	before := env.Balance(t, env.Buyer.Address)
	var served, refused atomic.Int64
	var wg sync.WaitGroup
	for _, h := range headers {
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(request(t, http.MethodGet, p.srv.URL+"/r", x402.HeaderPaymentSignature, h))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				served.Add(1)
			case http.StatusForbidden:
				refused.Add(1)
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if served.Load() != 3 || refused.Load() != 7 {
		t.Fatalf("served %d, refused %d; want 3 and 7", served.Load(), refused.Load())
	}
	want, _ := before.Sub(evm.NewAmount(3 * price))
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s", got, want)
	}
}
