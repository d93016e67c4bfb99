package paywall_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

// idRoute is a route with the payment-identifier extension on a devnet; its handler counts runs
// and can be held, to catch resends while the first request is in flight.
type idRoute struct {
	*quidtest.Env
	url  string
	runs atomic.Int64
	hold chan struct{} // when set, the handler waits on it
	in   chan struct{} // the handler signals here when it starts
}

func newIDRoute(t *testing.T, cfg paywall.PaymentIdentifier) *idRoute {
	t.Helper()
	r := &idRoute{Env: quidtest.NewEnv(t, quidtest.Options{})}
	mw, err := paywall.Middleware(paywall.Config{
		Facilitator: r.Facilitator, ChainID: r.Chain.ChainID(), PayTo: r.Seller.Address, Assets: evm.NewRegistry(r.Token),
	}, paywall.Route{Price: "$0.01", PaymentIdentifier: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.runs.Add(1)
		if r.in != nil {
			r.in <- struct{}{}
		}
		if r.hold != nil {
			<-r.hold
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"run":`+strconv.FormatInt(n, 10)+`}`)
	})))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/thing"
	return r
}

// offer returns the 402's requirements and extensions.
func (r *idRoute) offer(t *testing.T) (x402.PaymentRequirements, x402.Object) {
	t.Helper()
	resp, err := http.Get(r.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("unpaid request: %d, %v", resp.StatusCode, err)
	}
	return pr.Accepts[0], pr.Extensions
}

// pay returns a fresh PAYMENT-SIGNATURE for req carrying id (none when id is "").
func (r *idRoute) pay(t *testing.T, req x402.PaymentRequirements, id string) string {
	t.Helper()
	p := quidtest.Payload(t, r.Buyer.Key, r.Token.Domain(), quidtest.Authorization(t, r.Buyer.Key, req), req)
	if id != "" {
		info, _ := json.Marshal(map[string]any{"required": false, "id": id})
		p.Extensions = x402.Object{paywall.ExtensionPaymentIdentifier: json.RawMessage(`{"info":` + string(info) + `}`)}
	}
	return quidtest.Header(t, p)
}

func (r *idRoute) send(t *testing.T, header string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.url, nil)
	req.Header.Set(x402.HeaderPaymentSignature, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func settlementOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	s, err := x402.DecodeSettleResponse(resp.Header.Get(x402.HeaderPaymentResponse))
	if err != nil || !s.Success {
		t.Fatalf("PAYMENT-RESPONSE %q: %+v %v", resp.Header.Get(x402.HeaderPaymentResponse), s, err)
	}
	return s.Transaction
}

func TestPaymentIdentifierResendGetsTheSameResponse(t *testing.T) {
	r := newIDRoute(t, paywall.PaymentIdentifier{})
	req, ext := r.offer(t)
	var decl struct {
		Info   map[string]any  `json:"info"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(ext[paywall.ExtensionPaymentIdentifier], &decl); err != nil || decl.Info["required"] != false || len(decl.Schema) == 0 {
		t.Fatalf("402 declares %s", ext[paywall.ExtensionPaymentIdentifier])
	}

	start := r.Balance(t, r.Buyer.Address)
	first := r.pay(t, req, "pay_0123456789abcdef")
	resp, body := r.send(t, first)
	if resp.StatusCode != http.StatusOK || body != `{"run":1}` {
		t.Fatalf("first: %d %s", resp.StatusCode, body)
	}
	tx := settlementOf(t, resp)

	resp, body = r.send(t, first)
	if resp.StatusCode != http.StatusOK || body != `{"run":1}` || settlementOf(t, resp) != tx {
		t.Fatalf("resend: %d %s, want the first response", resp.StatusCode, body)
	}
	if r.runs.Load() != 1 {
		t.Fatalf("handler ran %d times", r.runs.Load())
	}
	paid, _ := start.Sub(evm.NewAmount(10_000))
	if got := r.Balance(t, r.Buyer.Address); got.Cmp(paid) != 0 {
		t.Fatalf("buyer balance %s, want %s: one payment", got, paid)
	}

	// Another payment under the same id is a conflict; under another id it is a new purchase.
	second := r.pay(t, req, "pay_0123456789abcdef")
	if resp, body := r.send(t, second); resp.StatusCode != http.StatusConflict {
		t.Fatalf("same id, other payment: %d %s, want 409", resp.StatusCode, body)
	}
	if resp, body := r.send(t, r.pay(t, req, "pay_fedcba9876543210")); resp.StatusCode != http.StatusOK || body != `{"run":2}` {
		t.Fatalf("new id: %d %s", resp.StatusCode, body)
	}
	// Payments without an id are served as usual when the route does not require one.
	if resp, body := r.send(t, r.pay(t, req, "")); resp.StatusCode != http.StatusOK || body != `{"run":3}` {
		t.Fatalf("no id: %d %s", resp.StatusCode, body)
	}
}

func TestPaymentIdentifierRequiredAndMalformed(t *testing.T) {
	r := newIDRoute(t, paywall.PaymentIdentifier{Required: true})
	req, ext := r.offer(t)
	if !jsonEqualTest(t, ext[paywall.ExtensionPaymentIdentifier], "info", `{"required":true}`) {
		t.Fatalf("402 declares %s", ext[paywall.ExtensionPaymentIdentifier])
	}
	for name, id := range map[string]string{"missing": "", "too short": "pay_123", "bad characters": "pay_0123456789abcdef!"} {
		if resp, body := r.send(t, r.pay(t, req, id)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s id: %d %s, want 400", name, resp.StatusCode, body)
		}
	}
	if r.runs.Load() != 0 {
		t.Fatalf("handler ran %d times", r.runs.Load())
	}
}

func TestPaymentIdentifierRefusalIsNotKept(t *testing.T) {
	r := newIDRoute(t, paywall.PaymentIdentifier{})
	req, _ := r.offer(t)
	// Signed by the wrong key: refused. The id stays free for a payment that works.
	bad := quidtest.Payload(t, r.Seller.Key, r.Token.Domain(), quidtest.Authorization(t, r.Buyer.Key, req), req)
	bad.Extensions = x402.Object{paywall.ExtensionPaymentIdentifier: json.RawMessage(`{"info":{"required":false,"id":"pay_0123456789abcdef"}}`)}
	if resp, _ := r.send(t, quidtest.Header(t, bad)); resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("bad payment: %d", resp.StatusCode)
	}
	if resp, body := r.send(t, r.pay(t, req, "pay_0123456789abcdef")); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry under the same id: %d %s", resp.StatusCode, body)
	}
}

func TestPaymentIdentifierResendWhileInFlight(t *testing.T) {
	r := newIDRoute(t, paywall.PaymentIdentifier{})
	req, _ := r.offer(t)
	r.hold, r.in = make(chan struct{}), make(chan struct{}, 4)
	header := r.pay(t, req, "pay_0123456789abcdef")

	type result struct {
		status int
		body   string
		tx     string
	}
	results := make(chan result, 3)
	var wg sync.WaitGroup
	send := func() {
		defer wg.Done()
		resp, body := r.send(t, header)
		results <- result{resp.StatusCode, body, resp.Header.Get(x402.HeaderPaymentResponse)}
	}
	wg.Add(1)
	go send()
	<-r.in // the first request is in the handler
	wg.Add(2)
	go send()
	go send()
	close(r.hold)
	wg.Wait()
	close(results)
	var first *result
	for res := range results {
		if res.status != http.StatusOK || res.body != `{"run":1}` || res.tx == "" {
			t.Fatalf("concurrent resend: %+v", res)
		}
		if first == nil {
			first = &res
		} else if res.tx != first.tx {
			t.Fatalf("resends got different settlements: %s and %s", res.tx, first.tx)
		}
	}
	if r.runs.Load() != 1 {
		t.Fatalf("handler ran %d times", r.runs.Load())
	}
}

func jsonEqualTest(t *testing.T, raw json.RawMessage, member, want string) bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return false
	}
	var a, b any
	json.Unmarshal(m[member], &a)
	json.Unmarshal([]byte(want), &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestPaymentIdentifierForgetsTheOldestWhenFull(t *testing.T) {
	r := newIDRoute(t, paywall.PaymentIdentifier{MaxEntries: 1})
	req, _ := r.offer(t)
	a, b := r.pay(t, req, "pay_aaaaaaaaaaaaaaaa"), r.pay(t, req, "pay_bbbbbbbbbbbbbbbb")
	for _, h := range []string{a, b} {
		if resp, body := r.send(t, h); resp.StatusCode != http.StatusOK {
			t.Fatalf("pay: %d %s", resp.StatusCode, body)
		}
	}
	if resp, body := r.send(t, b); resp.StatusCode != http.StatusOK || body != `{"run":2}` {
		t.Fatalf("resend of the newest: %d %s, want its kept response", resp.StatusCode, body)
	}
	// a was forgotten: its resend is a new request carrying a spent authorization.
	if resp, body := r.send(t, a); resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("resend of the evicted: %d %s, want 402", resp.StatusCode, body)
	}
	if r.runs.Load() != 2 {
		t.Fatalf("handler ran %d times", r.runs.Load())
	}
}
