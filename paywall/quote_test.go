package paywall_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

func (s *shop) quote(t *testing.T, q paywall.QuoteRequest) (*http.Response, paywall.Quote) {
	t.Helper()
	b, _ := json.Marshal(q)
	resp, err := http.Post(s.srv.URL+paywall.QuotePath, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out paywall.Quote
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func quoteNonce(t *testing.T, q paywall.Quote) *[32]byte {
	t.Helper()
	n, err := evm.ParseNonce(q.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	return &n
}

func quotedShop(t *testing.T) *shop {
	byTask := paywall.QuoterFunc(func(_ context.Context, q paywall.QuoteRequest) (string, error) {
		if strings.Contains(q.Task, "long") {
			return "$0.05", nil
		}
		return "$0.02", nil
	})
	return newShop(t, nil,
		paywall.Route{Method: "POST", Path: "/translate", Price: "$0.03", Quote: &paywall.QuotePolicy{TTL: time.Minute, Quoter: byTask}},
		paywall.Route{Method: "POST", Path: "/other", Price: "$0.05", Quote: &paywall.QuotePolicy{}},
		paywall.Route{Method: "GET", Path: "/fixed", Price: "$0.05"})
}

// A quote is paid once, with its nonce, at its price, on its route; the route's published price
// still works for buyers without one.
func TestQuotePaidOnceOnItsRoute(t *testing.T) {
	t.Parallel()
	s := quotedShop(t)
	resp, q := s.quote(t, paywall.QuoteRequest{Method: "POST", Path: "/translate", Task: "a long novel"})
	if resp.StatusCode != http.StatusOK || q.Price != "50000" || q.PayTo != s.Seller.Address.Hex() || len(q.Accepts) != 1 {
		t.Fatalf("quote %d %+v", resp.StatusCode, q)
	}
	if q.ExpiresAt != s.clock.Now().Add(time.Minute).Unix() {
		t.Fatalf("quote expires at %d", q.ExpiresAt)
	}
	var terms paywall.Disclosure
	json.Unmarshal(q.Accepts[0].Extra[paywall.ExtraKey], &terms)
	if terms.Quote == nil || terms.Quote.Nonce != q.Nonce || terms.Quote.ID != q.ID {
		t.Fatalf("the quote's terms are not in extra: %s", q.Accepts[0].Extra[paywall.ExtraKey])
	}
	// The 402 of a request presenting the quote offers the quoted price, terms in extra.
	withQuote := map[string]string{paywall.HeaderQuote: q.ID}
	if pr := s.offer(t, "POST", "/translate", withQuote); pr.Accepts[0].Amount != "50000" || string(pr.Accepts[0].Extra[paywall.ExtraKey]) != string(q.Accepts[0].Extra[paywall.ExtraKey]) {
		t.Fatalf("402 with a quote offers %+v", pr.Accepts[0])
	}
	sellerBefore := s.Balance(t, s.Seller.Address)

	var accepted atomic.Pointer[paywall.AcceptedQuote]
	s.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if q, ok := paywall.PaidQuote(r); ok {
			accepted.Store(&q)
		}
	})
	sig := s.pay(t, s.Buyer.Key, q.Accepts[0], quoteNonce(t, q))
	header := map[string]string{paywall.HeaderQuote: q.ID, x402.HeaderPaymentSignature: sig}
	resp, body := s.do(t, "POST", "/translate", header)
	requireStatus(t, resp, body, http.StatusOK, "")
	if a := accepted.Load(); a == nil || a.ID != q.ID || a.TaskSHA256 != sha256.Sum256([]byte("a long novel")) || a.Amount.Cmp(evm.NewAmount(50_000)) != 0 {
		t.Fatalf("the handler saw quote %+v", a)
	}
	want, _ := sellerBefore.Add(evm.NewAmount(50_000))
	s.requireBalance(t, s.Seller.Address, want)

	// Replayed: on the same route (the nonce is spent) and on another quotable route.
	resp, body = s.do(t, "POST", "/translate", header)
	requireStatus(t, resp, body, http.StatusPaymentRequired, x402.ReasonExactNonceUsed)
	resp, body = s.do(t, "POST", "/other", header)
	requireStatus(t, resp, body, http.StatusPaymentRequired, paywall.ReasonQuoteMismatch)
	s.requireBalance(t, s.Seller.Address, want)

	// Without a quote the published price holds.
	req := s.offer(t, "POST", "/translate", nil).Accepts[0]
	if req.Amount != "30000" {
		t.Fatalf("published price %s", req.Amount)
	}
}

// A fresh quote's payment presented on another route, with another nonce, after expiry, or with
// a tampered quote is refused and not settled.
func TestQuoteRefusals(t *testing.T) {
	t.Parallel()
	s := quotedShop(t)
	_, q := s.quote(t, paywall.QuoteRequest{Method: "POST", Path: "/translate", Task: "short"})
	if q.Price != "20000" {
		t.Fatalf("quote %+v", q)
	}
	good := s.pay(t, s.Buyer.Key, q.Accepts[0], quoteNonce(t, q))
	before := s.Balance(t, s.Buyer.Address)
	for _, tc := range []struct {
		name         string
		method, path string
		header       map[string]string
		reason       x402.Reason
	}{
		{"on another quotable route", "POST", "/other", map[string]string{paywall.HeaderQuote: q.ID, x402.HeaderPaymentSignature: good}, paywall.ReasonQuoteMismatch},
		{"on a fixed-price route", "GET", "/fixed", map[string]string{paywall.HeaderQuote: q.ID, x402.HeaderPaymentSignature: good}, paywall.ReasonQuoteMismatch},
		{"with a random nonce", "POST", "/translate", map[string]string{paywall.HeaderQuote: q.ID,
			x402.HeaderPaymentSignature: s.pay(t, s.Buyer.Key, q.Accepts[0], nil)}, paywall.ReasonQuoteMismatch},
		{"tampered", "POST", "/translate", map[string]string{paywall.HeaderQuote: strings.Replace(q.ID, "A", "B", 1) + "x",
			x402.HeaderPaymentSignature: good}, paywall.ReasonQuoteInvalid},
		{"garbage", "POST", "/translate", map[string]string{paywall.HeaderQuote: "not-a-quote", x402.HeaderPaymentSignature: good}, paywall.ReasonQuoteInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.do(t, tc.method, tc.path, tc.header)
			requireStatus(t, resp, body, http.StatusPaymentRequired, tc.reason)
		})
	}
	s.clock.advance(2 * time.Minute)
	resp, body := s.do(t, "POST", "/translate", map[string]string{paywall.HeaderQuote: q.ID, x402.HeaderPaymentSignature: good})
	requireStatus(t, resp, body, http.StatusPaymentRequired, paywall.ReasonQuoteExpired)
	s.requireBalance(t, s.Buyer.Address, before)
	if n := s.runs.Load(); n != 0 {
		t.Fatalf("handler ran %d times", n)
	}
	refusals, _ := s.db.Refusals(t.Context(), 0)
	if len(refusals) < 6 {
		t.Fatalf("%d refusals recorded, want at least 6", len(refusals))
	}
}

func TestQuoteEndpointBadRequests(t *testing.T) {
	t.Parallel()
	s := quotedShop(t)
	for _, tc := range []struct {
		name   string
		method string
		body   string
		status int
	}{
		{"GET", "GET", "", http.StatusMethodNotAllowed},
		{"not JSON", "POST", "{", http.StatusBadRequest},
		{"no method", "POST", `{"path":"/translate"}`, http.StatusBadRequest},
		{"relative path", "POST", `{"method":"POST","path":"translate"}`, http.StatusBadRequest},
		{"absolute URL", "POST", `{"method":"POST","path":"http://evil/translate"}`, http.StatusBadRequest},
		{"bad payer", "POST", `{"method":"POST","path":"/translate","payer":"me"}`, http.StatusBadRequest},
		{"unquotable route", "POST", `{"method":"GET","path":"/fixed"}`, http.StatusNotFound},
		{"wrong method", "POST", `{"method":"GET","path":"/translate"}`, http.StatusNotFound},
		{"dot segments", "POST", `{"method":"POST","path":"/x/../fixed"}`, http.StatusNotFound},
		{"too large", "POST", `{"method":"POST","path":"/translate","task":"` + strings.Repeat("a", 70<<10) + `"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, paywall.QuotePath, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			s.pw.QuoteHandler().ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			var b struct{ Error, Reason string }
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Reason == "" {
				t.Fatalf("body %s is not a JSON reason", rec.Body)
			}
		})
	}
}

// refusingFacilitator refuses every payment: the fuzz targets need a paywall without a chain,
// and must never reach a settlement.
type refusingFacilitator struct{}

func (refusingFacilitator) Verify(context.Context, *x402.PaymentPayload, x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	return &x402.VerifyResponse{InvalidReason: x402.ReasonExactSignature}, nil
}

func (refusingFacilitator) Settle(context.Context, *x402.PaymentPayload, x402.PaymentRequirements) (*x402.SettleResponse, error) {
	panic("settle reached")
}

// FuzzNetworkInput feeds arbitrary quote, capability and payment headers and quote bodies to a
// paywall: nothing is served, nothing is settled, nothing answers 500.
func FuzzNetworkInput(f *testing.F) {
	token := evm.USDCBaseSepolia
	pw, err := paywall.New(paywall.Config{Facilitator: refusingFacilitator{}, ChainID: 84532, PayTo: common.HexToAddress("0x01"),
		Secret: secret, Uses: &countingUses{}, Assets: evm.NewRegistry(token)})
	if err != nil {
		f.Fatal(err)
	}
	mw, err := pw.Charge(paywall.Route{Method: "POST", Path: "/q", Price: "$0.01", Quote: &paywall.QuotePolicy{},
		Capability: &paywall.CapabilityPolicy{Uses: 1}})
	if err != nil {
		f.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("served") }))
	rec := httptest.NewRecorder()
	pw.QuoteHandler().ServeHTTP(rec, httptest.NewRequest("POST", paywall.QuotePath, strings.NewReader(`{"method":"POST","path":"/q"}`)))
	var q paywall.Quote
	json.Unmarshal(rec.Body.Bytes(), &q)
	f.Add(q.ID, "", "", `{"method":"POST","path":"/q"}`)
	f.Add(q.ID[:len(q.ID)/2], "AgEEcXVpZAI", "eyJ4NDAyVmVyc2lvbiI6Mn0", `{"method":"POST","path":"/q","task":"x"}`)
	f.Add("e30.AAAA", "!!", "{}", "[]")
	f.Fuzz(func(t *testing.T, quote, capToken, payment, body string) {
		req := httptest.NewRequest("POST", "/q", nil)
		for k, v := range map[string]string{paywall.HeaderQuote: quote, paywall.HeaderCapability: capToken, x402.HeaderPaymentSignature: payment} {
			if v != "" && !strings.ContainsAny(v, "\r\n") {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusPaymentRequired && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		pw.QuoteHandler().ServeHTTP(rec, httptest.NewRequest("POST", paywall.QuotePath, strings.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("quote endpoint answered %d: %s", rec.Code, rec.Body)
		}
	})
}

// countingUses is a CapabilityUses in memory, for tests without a store.
type countingUses struct {
	mu   sync.Mutex
	used map[[16]byte]uint64
}

func (c *countingUses) UseCapability(_ context.Context, id [16]byte, max uint64, _ time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used == nil {
		c.used = map[[16]byte]uint64{}
	}
	if max > 0 && c.used[id] >= max {
		return false, nil
	}
	c.used[id]++
	return true, nil
}

// A quote can be paid from any address, so a payer claimed when asking for it must not earn a
// known buyer's price.
func TestQuoteIsNotPricedForAClaimedPayer(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, paywall.Route{Method: "POST", Path: "/k", Price: "$0.02", KnownPrice: "$0.01", Quote: &paywall.QuotePolicy{}})
	known := s.Buyer.Address
	if err := s.db.RecordPayment(t.Context(), store.SellerPayment{Key: store.Key{1}, At: time.Now(), Payer: known,
		Route: "POST /k", Asset: s.Token.Address, Amount: evm.NewAmount(10000), Tx: "0x01", Status: 200}); err != nil {
		t.Fatal(err)
	}
	resp, q := s.quote(t, paywall.QuoteRequest{Method: "POST", Path: "/k", Payer: known.Hex()})
	if resp.StatusCode != http.StatusOK || q.Price != "20000" {
		t.Fatalf("quote for a claimed known payer: %s %+v, want the unknown buyer's price 20000", resp.Status, q)
	}
}
