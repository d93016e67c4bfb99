package paywall_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

const (
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	browserUA     = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
)

// browserRoutes serves one paid route twice on a mux: at /any with no method in its pattern, so
// that OPTIONS reaches the paywall, and at GET /get, which OPTIONS reaches only through
// paywall.CORS. It returns the mux's URL wrapped in paywall.CORS, and bare.
func browserRoutes(t *testing.T, description string) (env *quidtest.Env, url, bare string) {
	t.Helper()
	env = quidtest.NewEnv(t, quidtest.Options{})
	pw, err := paywall.New(paywall.Config{Facilitator: env.Facilitator, ChainID: env.Chain.ChainID(), PayTo: env.Seller.Address, Assets: evm.NewRegistry(env.Token)})
	if err != nil {
		t.Fatal(err)
	}
	charge, err := pw.Charge(paywall.Route{Price: "$0.01", Description: description})
	if err != nil {
		t.Fatal(err)
	}
	h := charge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	mux := http.NewServeMux()
	mux.Handle("/any", h)
	mux.Handle("GET /get", h)
	srv := httptest.NewServer(paywall.CORS(mux))
	t.Cleanup(srv.Close)
	bareSrv := httptest.NewServer(mux)
	t.Cleanup(bareSrv.Close)
	return env, srv.URL, bareSrv.URL
}

func send(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestCORSPreflightAllowsPaymentHeaders(t *testing.T) {
	_, url, bare := browserRoutes(t, "weather")
	for _, path := range []string{bare + "/any", url + "/get", url + "/any"} {
		// What a browser sends before @x402/fetch's paid retry from another origin.
		resp, _ := send(t, http.MethodOptions, path, map[string]string{
			"Origin":                         "https://app.example.test",
			"Access-Control-Request-Method":  "GET",
			"Access-Control-Request-Headers": "access-control-expose-headers,payment-signature,x-app-trace",
		})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: preflight %d, want 204", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Allow-Origin %q", path, got)
		}
		allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"payment-signature", "x-payment", "access-control-expose-headers", "x-app-trace"} {
			if !strings.Contains(allowed, h) {
				t.Errorf("%s: Allow-Headers %q lacks %s", path, allowed, h)
			}
		}
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
			t.Errorf("%s: Allow-Methods %q", path, resp.Header.Get("Access-Control-Allow-Methods"))
		}
	}
	// Without paywall.CORS, a method pattern keeps preflights from the paywall.
	if resp, _ := send(t, http.MethodOptions, bare+"/get", map[string]string{"Origin": "https://app.example.test", "Access-Control-Request-Method": "GET"}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("preflight to GET /get on the bare mux: %d, want the mux's 405", resp.StatusCode)
	}
	// OPTIONS that is not a preflight is the application's.
	if resp, _ := send(t, http.MethodOptions, url+"/get", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("plain OPTIONS: %d, want the mux's 405", resp.StatusCode)
	}
}

func TestCrossOriginResponsesExposePaymentHeaders(t *testing.T) {
	env, url, _ := browserRoutes(t, "weather")
	resp, _ := send(t, http.MethodGet, url+"/get", map[string]string{"Origin": "https://app.example.test"})
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("unpaid cross-origin: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	expose := resp.Header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"PAYMENT-REQUIRED", "PAYMENT-RESPONSE"} {
		if !strings.Contains(expose, h) {
			t.Errorf("Expose-Headers %q lacks %s", expose, h)
		}
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatal(err)
	}
	req := pr.Accepts[0]
	p := quidtest.Payload(t, env.Buyer.Key, env.Token.Domain(), quidtest.Authorization(t, env.Buyer.Key, req), req)
	resp, body := send(t, http.MethodGet, url+"/get", map[string]string{"Origin": "https://app.example.test", x402.HeaderPaymentSignature: quidtest.Header(t, p)})
	if resp.StatusCode != http.StatusOK || body != `{"ok":true}` || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "PAYMENT-RESPONSE") || resp.Header.Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("paid cross-origin: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

func TestBrowsersGetAPaywallPageAgentsGetJSON(t *testing.T) {
	_, url, _ := browserRoutes(t, `Weather <script>alert("x")</script>`)

	resp, body := send(t, http.MethodGet, url+"/get", map[string]string{"Accept": browserAccept, "User-Agent": browserUA})
	if resp.StatusCode != http.StatusPaymentRequired || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, "0.01 qUSD") || !strings.Contains(body, "Payment required") {
		t.Errorf("page does not state the price:\n%s", body)
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("description not escaped:\n%s", body)
	}
	// A wallet in the browser can still read the terms.
	if _, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired)); err != nil {
		t.Errorf("browser 402 without usable PAYMENT-REQUIRED: %v", err)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}

	for name, h := range map[string]map[string]string{
		"node fetch":        {"Accept": "*/*", "User-Agent": "node"},
		"Go client":         nil,
		"html, not Mozilla": {"Accept": "text/html", "User-Agent": "curl/8.5.0"},
		"Mozilla, JSON":     {"Accept": "application/json", "User-Agent": browserUA},
	} {
		resp, body := send(t, http.MethodGet, url+"/get", h)
		var pr x402.PaymentRequired
		if resp.StatusCode != http.StatusPaymentRequired || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(body), &pr) != nil || pr.X402Version != x402.V2 {
			t.Errorf("%s: %d %s %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}
