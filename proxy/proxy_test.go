package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/proxy"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

const price = 10_000 // $0.01 of the devnet's 6-decimal token

// upstream is the API behind the proxy. It answers with what it saw, so tests can check what
// the proxy forwarded.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
	hits atomic.Int64
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"route":%q}`, r.URL.Path, r.Header.Get("X-Route"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("upstream saw no request")
	}
	return u.seen[len(u.seen)-1]
}

// head is the top of a configuration for env, forwarding to up.
func head(env *quidtest.Env, up string) string {
	return fmt.Sprintf("listen: 127.0.0.1:0\nupstream: %s\nchain_id: %d\npay_to: %s\n", up, env.Chain.ChainID(), env.Seller.Address.Hex())
}

type served struct {
	*proxy.Proxy
	srv  *httptest.Server
	file string
}

// serve writes the configuration to a file, builds a proxy on env's facilitator and serves it.
func serve(t *testing.T, env *quidtest.Env, yaml string, vars map[string]string) *served {
	t.Helper()
	file := filepath.Join(t.TempDir(), "quid.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := proxy.Parse(file, []byte(yaml), env2(vars))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "quid.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := proxy.New(cfg, proxy.Options{Facilitator: env.Facilitator, Store: db, LookupEnv: env2(vars)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &served{Proxy: p, srv: srv, file: file}
}

func env2(vars map[string]string) func(string) (string, bool) { return env(vars) }

func (s *served) write(t *testing.T, yaml string) {
	t.Helper()
	if err := os.WriteFile(s.file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func buyer(t testing.TB, env *quidtest.Env) *http.Client {
	t.Helper()
	w, err := wallet.New(wallet.Config{Key: env.Buyer.Key, Assets: evm.NewRegistry(env.Token), Max: "0.05"})
	if err != nil {
		t.Fatal(err)
	}
	return w.Client()
}

func get(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func request(t *testing.T, method, url string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// signed returns a valid PAYMENT-SIGNATURE for the route at url, from env's buyer.
func signed(t *testing.T, env *quidtest.Env, url string) string {
	t.Helper()
	resp, _ := get(t, http.DefaultClient, request(t, http.MethodGet, url))
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatalf("no 402 at %s: %d %v", url, resp.StatusCode, err)
	}
	req := pr.Accepts[0]
	return quidtest.Header(t, quidtest.Payload(t, env.Buyer.Key, env.Token.Domain(), quidtest.Authorization(t, env.Buyer.Key, req), req))
}

func TestPaidRouteIsSettledOnChainAndForwarded(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+`routes:
  - name: weather
    path: /weather
    price: $0.01
    description: weather
    headers:
      X-Route: weather
      Authorization: Bearer ${UPSTREAM_KEY}
  - path: /free
    free: true
`, map[string]string{"UPSTREAM_KEY": "upstream-secret"})

	resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/weather"))
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get(x402.HeaderPaymentRequired) == "" {
		t.Fatalf("unpaid: %d %s", resp.StatusCode, body)
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("upstream reached %d times unpaid", n)
	}

	buyerBefore, sellerBefore := env.Balance(t, env.Buyer.Address), env.Balance(t, env.Seller.Address)
	resp, body = get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/weather"))
	if resp.StatusCode != http.StatusOK || body != `{"path":"/weather","route":"weather"}` {
		t.Fatalf("paid: %d %s", resp.StatusCode, body)
	}
	if st, ok := wallet.Settlement(resp); !ok || !st.Success {
		t.Fatalf("PAYMENT-RESPONSE %+v", st)
	}
	wantBuyer, _ := buyerBefore.Sub(evm.NewAmount(price))
	wantSeller, _ := sellerBefore.Add(evm.NewAmount(price))
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(wantBuyer) != 0 {
		t.Errorf("buyer balance %s, want %s", got, wantBuyer)
	}
	if got := env.Balance(t, env.Seller.Address); got.Cmp(wantSeller) != 0 {
		t.Errorf("seller balance %s, want %s", got, wantSeller)
	}
	seen := up.last(t)
	if seen.Header.Get(x402.HeaderPaymentSignature) != "" || seen.Header.Get(x402.HeaderPaymentV1) != "" {
		t.Error("payment header forwarded upstream")
	}
	if got := seen.Header.Get("Authorization"); got != "Bearer upstream-secret" {
		t.Errorf("upstream Authorization %q", got)
	}
	if seen.Header.Get("X-Forwarded-For") == "" || seen.Header.Get("X-Forwarded-Host") == "" {
		t.Errorf("X-Forwarded-* missing: %v", seen.Header)
	}

	resp, body = get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/free"))
	if resp.StatusCode != http.StatusOK || body != `{"path":"/free","route":""}` {
		t.Fatalf("free route: %d %s", resp.StatusCode, body)
	}
}

func TestRouteMatching(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	route := func(name, rest string) string {
		return fmt.Sprintf("  - name: %s\n    headers: {X-Route: %s}\n%s", name, name, rest)
	}
	p := serve(t, env, head(env, up.URL)+"routes:\n"+
		route("exact-host", "    host: api.example.com\n    path: /a\n    free: true\n")+
		route("wild-host", "    host: \"*.example.com\"\n    path: /a\n    free: true\n")+
		route("post-only", "    methods: [POST, PUT]\n    path: /a\n    free: true\n")+
		route("get-a", "    method: GET\n    path: /a\n    free: true\n")+
		route("prefix", "    path: /api/*\n    free: true\n")+
		route("paid", "    path: /paid\n    price: $0.01\n"), nil)
	cases := []struct {
		method, host, path string
		status             int
		route              string
	}{
		{"GET", "api.example.com", "/a", 200, "exact-host"},
		{"GET", "API.Example.com:8080", "/a", 200, "exact-host"},
		{"GET", "api.example.com.", "/a", 200, "exact-host"},
		{"GET", "eu.example.com", "/a", 200, "wild-host"},
		{"GET", "a.b.example.com", "/a", 200, "wild-host"},
		{"GET", "example.com", "/a", 200, "get-a"},
		{"POST", "example.com", "/a", 200, "post-only"},
		{"PUT", "other.test", "/a", 200, "post-only"},
		{"HEAD", "other.test", "/a", 200, ""},
		{"DELETE", "other.test", "/a", 404, ""},
		{"GET", "x", "/a/", 404, ""},
		{"GET", "x", "/api", 200, "prefix"},
		{"GET", "x", "/api/", 200, "prefix"},
		{"GET", "x", "/api/v1/items", 200, "prefix"},
		{"GET", "x", "/apix", 404, ""},
		{"GET", "x", "/paid", 402, ""},
		{"GET", "x", "/nowhere", 404, ""},
		{"GET", "x", "/api/../paid", 400, ""},
		{"GET", "x", "/api/%2e%2e/paid", 400, ""},
		{"GET", "x", "/api/.%2E/paid", 400, ""},
		{"GET", "x", "/api/%2E%2E%2Fpaid", 400, ""},
		{"GET", "x", "//api/v1", 400, ""},
		{"GET", "x", "/api/./v1", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.host+tc.path, func(t *testing.T) {
			resp, body := get(t, http.DefaultClient, request(t, tc.method, p.srv.URL+tc.path, "Host", tc.host))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 && tc.method != "HEAD" && !strings.Contains(body, `"route":"`+tc.route+`"`) {
				t.Fatalf("served by %s, want %s", body, tc.route)
			}
		})
	}
}

func TestDefaultPassForwardsUnmatchedFree(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+"default: pass\nroutes:\n  - path: /paid\n    price: $0.01\n", nil)
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/other")); resp.StatusCode != 200 || !strings.Contains(body, "/other") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/paid")); resp.StatusCode != 402 {
		t.Fatalf("paid route %d", resp.StatusCode)
	}
}

// A payment is settled only for an upstream answer below 400; an upstream that fails or is
// unreachable after the buyer paid costs the buyer nothing, and the authorization stays usable.
func TestUpstreamFailureAfterPaymentIsNotCharged(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	var fail atomic.Bool
	fail.Store(true)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "database down", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	p := serve(t, env, head(env, up.URL)+fmt.Sprintf(`routes:
  - path: /fails
    price: $0.01
  - path: /unreachable
    price: $0.01
    upstream: %s
  - path: /fails-streaming
    price: $0.01
    settle: commit
`, dead.URL), nil)
	before := env.Balance(t, env.Buyer.Address)
	resp, body := get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/fails-streaming"))
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
		t.Fatalf("settle at commit, upstream 500: %d %q", resp.StatusCode, body)
	}

	header := signed(t, env, p.srv.URL+"/fails")
	resp, body = get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/fails", x402.HeaderPaymentSignature, header))
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
		t.Fatalf("got %d %q, want the upstream's 500 and no settlement", resp.StatusCode, body)
	}
	resp, body = get(t, buyer(t, env), request(t, http.MethodGet, p.srv.URL+"/unreachable"))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "upstream unavailable") {
		t.Fatalf("unreachable upstream: %d %s", resp.StatusCode, body)
	}
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(before) != 0 {
		t.Fatalf("buyer charged for failed upstreams: %s -> %s", before, got)
	}
	fail.Store(false)
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/fails", x402.HeaderPaymentSignature, header)); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("retry with the unspent authorization: %d %s", resp.StatusCode, body)
	}
	want, _ := before.Sub(evm.NewAmount(price))
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s", got, want)
	}
}

// One payment sent many times at once buys one response and moves value once.
func TestReplayedPaymentThroughProxyServesOnce(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	p := serve(t, env, head(env, up.URL)+"routes:\n  - path: /r\n    price: $0.01\n", nil)
	header := signed(t, env, p.srv.URL+"/r")
	before := env.Balance(t, env.Buyer.Address)
	const copies = 30
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range copies {
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(request(t, http.MethodGet, p.srv.URL+"/r", x402.HeaderPaymentSignature, header))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 402:
				refused.Add(1)
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != copies-1 || up.hits.Load() != 1 {
		t.Fatalf("served %d, refused %d, upstream hit %d; want 1, %d, 1", ok.Load(), refused.Load(), up.hits.Load(), copies-1)
	}
	want, _ := before.Sub(evm.NewAmount(price))
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s", got, want)
	}
}

// Server-sent events reach the buyer as the upstream writes them: the test reads the first
// event while the upstream is still holding the second back.
func TestStreamingPassesThrough(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// An event stream, or any chunked response (no Content-Length).
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	})
	p := serve(t, env, head(env, up.URL)+`routes:
  - path: /free-events
    free: true
  - path: /paid-events
    price: $0.01
    settle: before
`, nil)
	cases := []struct {
		name   string
		client *http.Client
		path   string
	}{
		{"free", http.DefaultClient, "/free-events?type=text/event-stream"},
		{"free, chunked", http.DefaultClient, "/free-events?type=application/x-ndjson"},
		{"paid, settled before", buyer(t, env), "/paid-events?type=text/event-stream"},
	}
	for _, tc := range cases {
		resp, err := tc.client.Do(request(t, http.MethodGet, p.srv.URL+tc.path))
		if err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(resp.Body)
		line, err := rd.ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("%s: first event %q, %v", tc.name, line, err)
		}
		release <- struct{}{}
		rest, _ := io.ReadAll(rd)
		resp.Body.Close()
		if string(rest) != "\ndata: second\n\n" {
			t.Fatalf("%s: rest %q", tc.name, rest)
		}
		if strings.HasPrefix(tc.path, "/paid-events") {
			if st, ok := wallet.Settlement(resp); !ok || !st.Success {
				t.Fatalf("paid stream not settled: %+v", st)
			}
		}
	}
}

// A reload swaps the configuration while requests run: none of them fails, a valid file takes
// effect, and a broken one is refused with its line while the running configuration serves on.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	slow := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-slow
		}
		fmt.Fprintf(w, `{"path":%q,"route":%q}`, r.URL.Path, r.Header.Get("X-Route"))
	})
	base := head(env, up.URL) + "routes:\n  - path: /a\n    free: true\n    headers: {X-Route: one}\n  - path: /slow\n    free: true\n    headers: {X-Route: one}\n  - path: /paid\n    price: $0.01\n"
	p := serve(t, env, base, nil)

	// A request in flight across the reload finishes on the configuration it started with.
	inFlight := make(chan string, 1)
	go func() {
		resp, err := http.Get(p.srv.URL + "/slow")
		if err != nil {
			inFlight <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inFlight <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests atomic.Int64
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer halt()
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(p.srv.URL + "/a")
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("request failed during reload: %d %s", resp.StatusCode, b)
					return
				}
				requests.Add(1)
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("traffic", func() bool { return requests.Load() > 20 })

	waitFor("the slow request to reach the upstream", func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		for _, r := range up.seen {
			if r.URL.Path == "/slow" {
				return true
			}
		}
		return false
	})
	// Payments in flight across the reload are settled and served.
	before := env.Balance(t, env.Buyer.Address)
	paid := make(chan int, 3)
	client := buyer(t, env)
	for range cap(paid) {
		go func() {
			resp, err := client.Get(p.srv.URL + "/paid")
			if err != nil {
				paid <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			paid <- resp.StatusCode
		}()
	}
	p.write(t, strings.ReplaceAll(base, "X-Route: one", "X-Route: two")+"  - path: /b\n    free: true\n")
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	close(slow)
	for range cap(paid) {
		if code := <-paid; code != 200 {
			t.Fatalf("a paid request across the reload: %d", code)
		}
	}
	if want, _ := before.Sub(evm.NewAmount(3 * price)); env.Balance(t, env.Buyer.Address).Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s", env.Balance(t, env.Buyer.Address), want)
	}
	if got := <-inFlight; got != `200 {"path":"/slow","route":"one"}` {
		t.Fatalf("request in flight across the reload: %s", got)
	}
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/a")); resp.StatusCode != 200 || !strings.Contains(body, `"route":"two"`) {
		t.Fatalf("after a good reload: %d %s", resp.StatusCode, body)
	}
	n := requests.Load()
	waitFor("traffic after reload", func() bool { return requests.Load() > n+20 })

	p.write(t, base+"  - path: /b\n    price: $0.0000001\n")
	err := p.Reload()
	var errs proxy.ConfigErrors
	if err == nil || !strings.Contains(err.Error(), p.file+":15: routes[3].price") || !errors.As(err, &errs) {
		t.Fatalf("broken reload: %v", err)
	}
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/b")); resp.StatusCode != 200 {
		t.Fatalf("the running configuration was not kept: /b %d %s", resp.StatusCode, body)
	}
	n = requests.Load()
	waitFor("traffic after a refused reload", func() bool { return requests.Load() > n+20 })
	halt()
	if p.Config().Routes[0].Headers[0].Value != "two" {
		t.Fatal("running configuration changed by a refused reload")
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	up := newUpstream(t, nil)
	const token = "admin-token-0123456789"
	p := serve(t, env, head(env, up.URL)+`routes:
  - name: paid
    path: /paid
    price: $0.01
    headers: {Authorization: "${UPSTREAM_KEY}"}
admin:
  path: /_quid
  token: ${ADMIN_TOKEN}
`, map[string]string{"ADMIN_TOKEN": token, "UPSTREAM_KEY": "never-shown"})
	admin := func(method, path, tok string) (*http.Response, string) {
		t.Helper()
		req := request(t, method, p.srv.URL+"/_quid"+path)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return get(t, http.DefaultClient, req)
	}
	for _, tok := range []string{"", "wrong", token + "x", "admin-token-012345678"} {
		if resp, _ := admin("GET", "/routes", tok); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %d, want 401", tok, resp.StatusCode)
		}
	}
	// The same API on its own listener (admin.listen).
	own := httptest.NewServer(p.Admin())
	t.Cleanup(own.Close)
	if resp, _ := get(t, http.DefaultClient, request(t, http.MethodGet, own.URL+"/revenue")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("own listener without a token: %d", resp.StatusCode)
	}
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, own.URL+"/revenue", "Authorization", "Bearer "+token)); resp.StatusCode != 200 {
		t.Fatalf("own listener: %d %s", resp.StatusCode, body)
	}
	if resp, _ := admin("GET", "/payers?limit=0", token); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("limit=0: %d", resp.StatusCode)
	}
	resp, body := admin("GET", "/routes", token)
	if resp.StatusCode != 200 || !strings.Contains(body, `"name":"paid"`) || !strings.Contains(body, `"headers":["Authorization"]`) || strings.Contains(body, "never-shown") {
		t.Fatalf("routes: %d %s", resp.StatusCode, body)
	}

	client := buyer(t, env)
	if resp, body := get(t, client, request(t, http.MethodGet, p.srv.URL+"/paid")); resp.StatusCode != 200 {
		t.Fatalf("paid: %d %s", resp.StatusCode, body)
	}
	resp, body = admin("GET", "/revenue", token)
	if resp.StatusCode != 200 || !strings.Contains(body, `"atomic":"10000"`) || !strings.Contains(body, `"route":"/paid"`) {
		t.Fatalf("revenue: %s", body)
	}

	buyerAddr := env.Buyer.Address.Hex()
	if resp, body := admin("POST", "/payers/"+buyerAddr+"/block", token); resp.StatusCode != 200 || !strings.Contains(body, `"blocked":true`) {
		t.Fatalf("block: %d %s", resp.StatusCode, body)
	}
	if resp, _ := admin("POST", "/payers/0xnope/block", token); resp.StatusCode != 400 {
		t.Fatalf("bad address: %d", resp.StatusCode)
	}
	before, hits := env.Balance(t, env.Buyer.Address), up.hits.Load()
	header := signed(t, env, p.srv.URL+"/paid")
	resp, body = get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/paid", x402.HeaderPaymentSignature, header))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, string(paywall.ReasonPayerBlocked)) {
		t.Fatalf("blocked payer: %d %s", resp.StatusCode, body)
	}
	if got := env.Balance(t, env.Buyer.Address); got.Cmp(before) != 0 || up.hits.Load() != hits {
		t.Fatal("a blocked payer's payment was settled or forwarded")
	}
	resp, body = admin("GET", "/payers", token)
	if !strings.Contains(body, buyerAddr) || !strings.Contains(body, `"blocked":true`) || !strings.Contains(body, `"payments":1`) {
		t.Fatalf("payers: %s", body)
	}
	resp, body = admin("GET", "/refusals", token)
	if !strings.Contains(body, `"status":403`) || !strings.Contains(body, buyerAddr) || !strings.Contains(body, string(paywall.ReasonPayerBlocked)) {
		t.Fatalf("refusals: %s", body)
	}

	if resp, _ := admin("POST", "/payers/"+buyerAddr+"/unblock", token); resp.StatusCode != 200 {
		t.Fatal("unblock")
	}
	if resp, body := get(t, http.DefaultClient, request(t, http.MethodGet, p.srv.URL+"/paid", x402.HeaderPaymentSignature, header)); resp.StatusCode != 200 {
		t.Fatalf("unblocked payer with the same, unspent, payment: %d %s", resp.StatusCode, body)
	}
}
