package paywall_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

// A Pricer decides each request's price from the request; the paid retry gets the same price,
// and a zero price serves free.
func TestPricerPricesEachRequest(t *testing.T) {
	t.Parallel()
	bySize := paywall.PricerFunc(func(r *http.Request, _ paywall.Buyer) (string, error) {
		n, _ := strconv.Atoi(r.URL.Query().Get("pages"))
		return "$0.00" + strconv.Itoa(n), nil
	})
	s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/print", Pricer: bySize})
	for _, tc := range []struct {
		pages int
		want  uint64
	}{{1, 1_000}, {7, 7_000}} {
		q := "/print?pages=" + strconv.Itoa(tc.pages)
		req := s.offer(t, "GET", q, nil).Accepts[0]
		if amountOf(req) != tc.want {
			t.Fatalf("%d pages priced %s, want %d", tc.pages, req.Amount, tc.want)
		}
		resp, body := s.do(t, "GET", q, paid(s.pay(t, s.Buyer.Key, req, nil)))
		requireStatus(t, resp, body, http.StatusOK, "")
		// Paying the 1-page price for 7 pages does not match.
		if tc.pages == 7 {
			cheap := req
			cheap.Amount = "1000"
			resp, body := s.do(t, "GET", q, paid(s.pay(t, s.Buyer.Key, cheap, nil)))
			requireStatus(t, resp, body, http.StatusPaymentRequired, x402.ReasonNoMatch)
		}
	}
	resp, body := s.do(t, "GET", "/print?pages=0", nil)
	requireStatus(t, resp, body, http.StatusOK, "")
	if n := s.runs.Load(); n != 3 {
		t.Fatalf("handler ran %d times, want 3 (two paid, one free)", n)
	}
}

// Known buyers (who paid before) pay KnownPrice; a buyer claiming to be known gets that price
// only for a payment from the address it claimed.
func TestKnownBuyersPayLess(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/news", Price: "$0.02", KnownPrice: "$0.01"})
	if req := s.offer(t, "GET", "/news", nil).Accepts[0]; amountOf(req) != 20_000 {
		t.Fatalf("unknown buyer quoted %s", req.Amount)
	}
	hint := map[string]string{paywall.HeaderPayer: s.Buyer.Address.Hex()}
	req := s.offer(t, "GET", "/news", hint).Accepts[0]
	if amountOf(req) != 20_000 {
		t.Fatalf("a buyer that never paid is quoted %s", req.Amount)
	}
	resp, body := s.do(t, "GET", "/news", paid(s.pay(t, s.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")

	known := s.offer(t, "GET", "/news", hint).Accepts[0]
	if amountOf(known) != 10_000 {
		t.Fatalf("a known buyer is quoted %s, want 10000", known.Amount)
	}
	// Someone else claiming the known payer's address and paying the known price from its own.
	strangerKey, strangerAddr := s.newBuyer(t)
	before := s.Balance(t, strangerAddr)
	resp, body = s.do(t, "GET", "/news", paid(s.pay(t, strangerKey, known, nil)))
	requireStatus(t, resp, body, http.StatusPaymentRequired, x402.ReasonNoMatch)
	s.requireBalance(t, strangerAddr, before)

	resp, body = s.do(t, "GET", "/news", paid(s.pay(t, s.Buyer.Key, known, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
}

// The pricing hook gets the request without credentials; when it fails, the request is
// refused with 503 and never served free.
func TestPricingHook(t *testing.T) {
	t.Parallel()
	var mode atomic.Int32 // 0 answers, 1 fails, 2 hangs until the client gives up
	var seen atomic.Pointer[paywall.PricingHookRequest]
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in paywall.PricingHookRequest
		json.NewDecoder(r.Body).Decode(&in)
		seen.Store(&in)
		switch mode.Load() {
		case 1:
			http.Error(w, "down", http.StatusInternalServerError)
			return
		case 2:
			<-r.Context().Done()
			return
		}
		json.NewEncoder(w).Encode(paywall.PricingHookResponse{Price: "$0.0" + strconv.FormatInt(in.BodySize, 10)})
	}))
	t.Cleanup(hook.Close)
	s := newShop(t, nil, paywall.Route{Method: "POST", Path: "/summarize",
		Pricer: paywall.PricingHook(hook.URL, &http.Client{Timeout: 200 * time.Millisecond})})

	post := func(header map[string]string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", s.srv.URL+"/summarize", stringsReader("abc"))
		req.Header.Set("Authorization", "Bearer secret-token")
		req.Header.Set("Cookie", "session=secret")
		req.Header.Set("X-Task", "short")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp, string(b[:n])
	}
	resp, body := post(nil)
	requireStatus(t, resp, body, http.StatusPaymentRequired, "")
	pr, _ := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if amountOf(pr.Accepts[0]) != 30_000 {
		t.Fatalf("3-byte body priced %s, want 30000", pr.Accepts[0].Amount)
	}
	in := seen.Load()
	if in.Method != "POST" || in.Path != "/summarize" || in.BodySize != 3 || in.Headers["X-Task"][0] != "short" {
		t.Fatalf("hook got %+v", in)
	}
	for _, h := range []string{"Authorization", "Cookie"} {
		if _, leaked := in.Headers[h]; leaked {
			t.Fatalf("the hook was sent the %s header", h)
		}
	}
	sig := s.pay(t, s.Buyer.Key, pr.Accepts[0], nil)
	resp, body = post(paid(sig))
	requireStatus(t, resp, body, http.StatusOK, "")
	if _, leaked := seen.Load().Headers[x402.HeaderPaymentSignature]; leaked {
		t.Fatal("the hook was sent the payment")
	}

	for _, m := range []int32{1, 2} {
		mode.Store(m)
		resp, body := post(nil)
		requireStatus(t, resp, body, http.StatusServiceUnavailable, paywall.ReasonPricingUnavailable)
	}
	if n := s.runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want once (the paid request)", n)
	}
}

// A Pricer's error is a 503, not a free response; a pricer giving a malformed price too.
func TestPricerErrorsAre503(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil,
		paywall.Route{Method: "GET", Path: "/err", Pricer: paywall.PricerFunc(func(*http.Request, paywall.Buyer) (string, error) {
			return "", errors.New("no idea")
		})},
		paywall.Route{Method: "GET", Path: "/bad", Pricer: paywall.PricerFunc(func(*http.Request, paywall.Buyer) (string, error) {
			return "cheap", nil
		})})
	for _, p := range []string{"/err", "/bad"} {
		resp, body := s.do(t, "GET", p, nil)
		requireStatus(t, resp, body, http.StatusServiceUnavailable, paywall.ReasonPricingUnavailable)
	}
	if s.runs.Load() != 0 {
		t.Fatal("a request without a price was served")
	}
}

func TestChargeRefusesIncompleteRoutes(t *testing.T) {
	t.Parallel()
	s := newShop(t, func(_ *shop, c *paywall.Config) { c.Secret, c.Uses, c.Spend, c.Balances = nil, nil, nil, nil })
	for _, tc := range []struct {
		name  string
		route paywall.Route
	}{
		{"no price", paywall.Route{}},
		{"zero price", paywall.Route{Price: "$0"}},
		{"quotes without a secret", paywall.Route{Price: "$0.01", Path: "/q", Quote: &paywall.QuotePolicy{}}},
		{"capability without a secret", paywall.Route{Price: "$0.01", Path: "/c", Capability: &paywall.CapabilityPolicy{}}},
		{"spend limit without a ledger", paywall.Route{Price: "$0.01", Policy: &paywall.Policy{Spend: paywall.SpendLimit{Max: "$1", Window: time.Hour}}}},
		{"minimum balance without a checker", paywall.Route{Price: "$0.01", Policy: &paywall.Policy{MinBalance: "$1"}}},
		{"rate without a period", paywall.Route{Price: "$0.01", Policy: &paywall.Policy{Rate: paywall.Rate{Requests: 3}}}},
		{"relative path", paywall.Route{Price: "$0.01", Path: "x"}},
		{"bad schema", paywall.Route{Price: "$0.01", InputSchema: json.RawMessage(`{`)}},
		{"unknown settle mode", paywall.Route{Price: "$0.01", Settle: paywall.SettleMode(99)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.pw.Charge(tc.route); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := paywall.ParseSettleMode("commit"); err != nil {
		t.Fatal(err)
	}
	if _, err := paywall.ParseSettleMode("later"); err == nil {
		t.Fatal("ParseSettleMode accepted an unknown mode")
	}
}
