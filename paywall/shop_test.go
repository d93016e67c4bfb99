package paywall_test

import (
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// clock is the paywall's clock in these tests: real time plus an offset a test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// shop is a seller on a devnet with the paywall's full surface: a durable store (a SQLite file)
// for payer records, spend limits and capability uses, discovery and the quote endpoint, and
// routes mounted at their paths. Every handler counts its runs.
type shop struct {
	*quidtest.Env
	db    *store.DB
	pw    *paywall.Paywall
	srv   *httptest.Server
	clock *clock
	runs  atomic.Int64
	// handler, when set, answers paid requests instead of {"ok":true}.
	handler atomic.Pointer[http.HandlerFunc]
}

var secret = []byte("a seller secret of at least 32 bytes, for tests")

func newShop(t *testing.T, config func(*shop, *paywall.Config), routes ...paywall.Route) *shop {
	t.Helper()
	s := &shop{Env: quidtest.NewEnv(t, quidtest.Options{}), clock: &clock{}}
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "seller.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s.db = db
	cfg := paywall.Config{
		Facilitator: s.Facilitator,
		ChainID:     s.Chain.ChainID(),
		PayTo:       s.Seller.Address,
		Assets:      evm.NewRegistry(s.Token),
		Claims:      db,
		Now:         s.clock.Now,
		Secret:      secret,
		Records:     db,
		Spend:       db,
		Uses:        db,
	}
	if config != nil {
		config(s, &cfg)
	}
	if s.pw, err = paywall.New(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+paywall.DiscoveryPath, s.pw.Discovery())
	mux.Handle(paywall.QuotePath, s.pw.QuoteHandler())
	for _, rt := range routes {
		mw, err := s.pw.Charge(rt)
		if err != nil {
			t.Fatal(err)
		}
		pattern := strings.TrimSuffix(rt.Path, "*")
		if rt.Method != "" {
			pattern = rt.Method + " " + pattern
		}
		mux.Handle(pattern, mw(http.HandlerFunc(s.serve)))
	}
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *shop) serve(w http.ResponseWriter, r *http.Request) {
	s.runs.Add(1)
	if h := s.handler.Load(); h != nil {
		(*h)(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func (s *shop) setHandler(h http.HandlerFunc) { s.handler.Store(&h) }

// do sends one request with headers and returns the response with its body read.
func (s *shop) do(t *testing.T, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
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

// offer asks for path unpaid and returns the 402 it gets.
func (s *shop) offer(t *testing.T, method, path string, header map[string]string) *x402.PaymentRequired {
	t.Helper()
	resp, body := s.do(t, method, path, header)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("%s %s unpaid: %d %s", method, path, resp.StatusCode, body)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// pay signs a payment for req from key; nonce, when set, is the quote's.
func (s *shop) pay(t *testing.T, key *ecdsa.PrivateKey, req x402.PaymentRequirements, nonce *[32]byte) string {
	t.Helper()
	auth := quidtest.Authorization(t, key, req)
	if nonce != nil {
		auth.Nonce = *nonce
	}
	return quidtest.Header(t, quidtest.Payload(t, key, s.Token.Domain(), auth, req))
}

// newBuyer returns a funded payer other than the environment's buyer.
func (s *shop) newBuyer(t *testing.T) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	s.Fund(t, addr, 1_000_000)
	return key, addr
}

func paid(sig string) map[string]string { return map[string]string{x402.HeaderPaymentSignature: sig} }

// reasonOf reads the reason of a 402 (PaymentRequired.error) or of a JSON {"reason"} body.
func reasonOf(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if h := resp.Header.Get(x402.HeaderPaymentRequired); h != "" {
		pr, err := x402.DecodePaymentRequired(h)
		if err != nil {
			t.Fatal(err)
		}
		return pr.Error
	}
	var b struct{ Reason, Error string }
	json.Unmarshal([]byte(body), &b)
	if b.Reason != "" {
		return b.Reason
	}
	return b.Error
}

func requireStatus(t *testing.T, resp *http.Response, body string, status int, reason x402.Reason) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if reason != "" {
		if got := reasonOf(t, resp, body); got != string(reason) {
			t.Fatalf("reason %q, want %q; body %s", got, reason, body)
		}
	}
}

func amountOf(req x402.PaymentRequirements) uint64 {
	a, _ := evm.ParseAmount(req.Amount)
	return a.Big().Uint64()
}

// balanceUnchanged fails when addr's balance moved.
func (s *shop) requireBalance(t *testing.T, addr common.Address, want evm.Amount) {
	t.Helper()
	if got := s.Balance(t, addr); got.Cmp(want) != 0 {
		t.Fatalf("balance of %s is %s, want %s", addr.Hex(), got, want)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func requirePR(t *testing.T, resp *http.Response, body string) *x402.PaymentRequired {
	t.Helper()
	requireStatus(t, resp, body, http.StatusPaymentRequired, "")
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatal(err)
	}
	return pr
}
