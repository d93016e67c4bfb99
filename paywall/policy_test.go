package paywall_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/capability"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// A payer refused by access policy gets 403 with a reason, even with a valid payment, and that
// payment is never settled.
func TestAccessPolicyRefusesBeforeSettling(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil)
	otherKey, other := s.newBuyer(t)
	adminBlockedKey, adminBlocked := s.newBuyer(t)
	blocked := s.Buyer.Address
	if err := s.db.BlockPayer(t.Context(), adminBlocked, "abuse"); err != nil {
		t.Fatal(err)
	}
	idCheck := func(r *http.Request, payer common.Address) error {
		if r.Header.Get("Sign-In-With-X") != "valid" {
			return errors.New("no sign-in proof")
		}
		return nil
	}
	routes := []paywall.Route{
		{Method: "GET", Path: "/blocked", Price: "$0.01", Policy: &paywall.Policy{Block: []common.Address{blocked}}},
		{Method: "GET", Path: "/members", Price: "$0.01", Policy: &paywall.Policy{Allow: []common.Address{other}}},
		{Method: "GET", Path: "/signed", Price: "$0.01", Policy: &paywall.Policy{Identity: idCheck}},
		{Method: "GET", Path: "/open", Price: "$0.01"},
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mw, err := s.pw.Charge(rt)
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle(rt.Method+" "+rt.Path, mw(http.HandlerFunc(s.serve)))
	}
	s.srv.Config.Handler = mux

	for _, tc := range []struct {
		name   string
		key    *ecdsa.PrivateKey
		path   string
		header map[string]string
		reason x402.Reason
	}{
		{"blocked by the route", nil, "/blocked", nil, paywall.ReasonPayerBlocked},
		{"blocked by the admin", adminBlockedKey, "/open", nil, paywall.ReasonPayerBlocked},
		{"not on the allowlist", nil, "/members", nil, paywall.ReasonPayerNotAllowed},
		{"identity refused", nil, "/signed", nil, paywall.ReasonIdentityRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := s.Buyer.Key
			if tc.key != nil {
				key = tc.key
			}
			req := s.offer(t, "GET", tc.path, nil).Accepts[0]
			payer := crypto.PubkeyToAddress(key.PublicKey)
			before := s.Balance(t, payer)
			header := paid(s.pay(t, key, req, nil))
			for k, v := range tc.header {
				header[k] = v
			}
			resp, body := s.do(t, "GET", tc.path, header)
			requireStatus(t, resp, body, http.StatusForbidden, tc.reason)
			s.requireBalance(t, payer, before)
		})
	}
	// The same payers pass where policy lets them.
	req := s.offer(t, "GET", "/members", nil).Accepts[0]
	resp, body := s.do(t, "GET", "/members", paid(s.pay(t, otherKey, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
	req = s.offer(t, "GET", "/signed", nil).Accepts[0]
	header := paid(s.pay(t, s.Buyer.Key, req, nil))
	header["Sign-In-With-X"] = "valid"
	resp, body = s.do(t, "GET", "/signed", header)
	requireStatus(t, resp, body, http.StatusOK, "")
	if n := s.runs.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
	refusals, err := s.db.Refusals(t.Context(), 0)
	if err != nil || len(refusals) != 4 || refusals[0].Status != http.StatusForbidden {
		t.Fatalf("refusals %+v, %v", refusals, err)
	}
}

// The rate limit refuses a payer's requests past the rate with 403 and Retry-After, and admits
// it again once the bucket refills; other payers are not affected.
func TestRateLimitPerPayer(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/r", Price: "$0.01",
		Policy: &paywall.Policy{Rate: paywall.Rate{Requests: 2, Per: time.Minute}}})
	otherKey, _ := s.newBuyer(t)
	req := s.offer(t, "GET", "/r", nil).Accepts[0]
	for range 2 {
		resp, body := s.do(t, "GET", "/r", paid(s.pay(t, s.Buyer.Key, req, nil)))
		requireStatus(t, resp, body, http.StatusOK, "")
	}
	before := s.Balance(t, s.Buyer.Address)
	resp, body := s.do(t, "GET", "/r", paid(s.pay(t, s.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusForbidden, paywall.ReasonRateLimited)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on a rate-limit refusal")
	}
	s.requireBalance(t, s.Buyer.Address, before)
	resp, body = s.do(t, "GET", "/r", paid(s.pay(t, otherKey, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
	s.clock.advance(30 * time.Second)
	resp, body = s.do(t, "GET", "/r", paid(s.pay(t, s.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
}

// Many concurrent payments of one payer against a spend cap: exactly as many as fit are settled,
// the rest refused with 403 before settling; a payment whose handler fails gives its share back.
func TestSpendLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/s", Price: "$0.01",
		Policy: &paywall.Policy{Spend: paywall.SpendLimit{Max: "$0.03", Window: time.Hour}}})
	req := s.offer(t, "GET", "/s", nil).Accepts[0]
	sellerBefore := s.Balance(t, s.Seller.Address)

	// A failing handler: admitted, not settled, its spend given back.
	s.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", http.StatusBadGateway) })
	resp, body := s.do(t, "GET", "/s", paid(s.pay(t, s.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusBadGateway, "")
	s.handler.Store(nil)

	const n = 8
	headers := make([]string, n)
	for i := range headers {
		headers[i] = s.pay(t, s.Buyer.Key, req, nil)
	}
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := s.do(t, "GET", "/s", paid(headers[i]))
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusOK] != 3 || count[http.StatusForbidden] != n-3 {
		t.Fatalf("statuses %v, want 3 served and %d refused", count, n-3)
	}
	want, _ := sellerBefore.Add(evm.NewAmount(30_000))
	s.requireBalance(t, s.Seller.Address, want)
	// A new window admits the payer again.
	s.clock.advance(time.Hour)
	resp, body = s.do(t, "GET", "/s", paid(s.pay(t, s.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
}

type failingBalances struct{}

func (failingBalances) BalanceOf(context.Context, common.Address, common.Address) (evm.Amount, error) {
	return evm.Amount{}, errors.New("node unreachable")
}

// A minimum deposit is checked against the payer's token balance on the devnet before anything
// is settled; a balance that cannot be read is a 503, not a free pass.
func TestMinimumBalance(t *testing.T) {
	t.Parallel()
	deposit := &paywall.Policy{MinBalance: "$0.50"}
	s := newShop(t, func(s *shop, c *paywall.Config) { c.Balances = paywall.ChainBalances(s.Chain.Client()) },
		paywall.Route{Method: "GET", Path: "/costly", Price: "$0.01", Policy: deposit})
	richKey, _ := s.newBuyer(t) // $1.00
	poorKey, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	poor := crypto.PubkeyToAddress(poorKey.PublicKey)
	s.Fund(t, poor, 100_000) // $0.10
	req := s.offer(t, "GET", "/costly", nil).Accepts[0]
	resp, body := s.do(t, "GET", "/costly", paid(s.pay(t, poorKey, req, nil)))
	requireStatus(t, resp, body, http.StatusForbidden, paywall.ReasonInsufficientDeposit)
	s.requireBalance(t, poor, evm.NewAmount(100_000))
	resp, body = s.do(t, "GET", "/costly", paid(s.pay(t, richKey, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")

	broken := newShop(t, func(_ *shop, c *paywall.Config) { c.Balances = failingBalances{} },
		paywall.Route{Method: "GET", Path: "/costly", Price: "$0.01", Policy: deposit})
	resp, body = broken.do(t, "GET", "/costly", paid(broken.pay(t, broken.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusServiceUnavailable, "")
	if broken.runs.Load() != 0 {
		t.Fatal("served without a balance check")
	}
}

// brokenStore fails every call, as a database that went away would.
type brokenStore struct{}

var errStoreDown = errors.New("store down")

func (brokenStore) Known(context.Context, common.Address) (bool, error)   { return false, errStoreDown }
func (brokenStore) Blocked(context.Context, common.Address) (bool, error) { return false, errStoreDown }
func (brokenStore) RecordPayment(context.Context, store.SellerPayment) error {
	return errStoreDown
}
func (brokenStore) RecordRequests(context.Context, common.Address, uint64, time.Time) error {
	return errStoreDown
}
func (brokenStore) RecordRefusal(context.Context, store.Refusal) error { return errStoreDown }
func (brokenStore) AddSpend(context.Context, common.Address, time.Time, evm.Amount, evm.Amount) (bool, error) {
	return false, errStoreDown
}
func (brokenStore) RefundSpend(context.Context, common.Address, time.Time, evm.Amount) error {
	return errStoreDown
}
func (brokenStore) UseCapability(context.Context, [16]byte, uint64, time.Time) (bool, error) {
	return false, errStoreDown
}

// When the seller's records, spend ledger or use counter cannot be reached, a request is
// answered 503 before anything is settled or served; never served free, never a 500.
func TestUnreachableSellerStoreIs503(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		set   func(*paywall.Config)
		route paywall.Route
		token bool
	}{
		{"records (blocklist)", func(c *paywall.Config) { c.Records = brokenStore{} }, paywall.Route{Method: "GET", Path: "/x", Price: "$0.01"}, false},
		{"records (known buyers)", func(c *paywall.Config) { c.Records = brokenStore{} }, paywall.Route{Method: "GET", Path: "/x", Price: "$0.02", KnownPrice: "$0.01"}, false},
		{"spend ledger", func(c *paywall.Config) { c.Spend = brokenStore{} },
			paywall.Route{Method: "GET", Path: "/x", Price: "$0.01", Policy: &paywall.Policy{Spend: paywall.SpendLimit{Max: "$1", Window: time.Hour}}}, false},
		{"capability uses", func(c *paywall.Config) { c.Uses = brokenStore{} },
			paywall.Route{Method: "GET", Path: "/x", Price: "$0.01", Capability: &paywall.CapabilityPolicy{}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newShop(t, func(_ *shop, c *paywall.Config) { tc.set(c) }, tc.route)
			header := map[string]string{paywall.HeaderPayer: s.Buyer.Address.Hex()}
			if tc.token {
				id, _ := capability.NewID()
				token, err := capability.Keys{Secret: secret}.Mint(id, capability.Payer(s.Buyer.Address),
					capability.Expires(time.Now().Add(time.Hour)), capability.Scope("GET /x"), capability.Uses(5))
				if err != nil {
					t.Fatal(err)
				}
				header = withToken(token)
			} else {
				req := s.Requirements(amountOf(x402.PaymentRequirements{Amount: "10000"}), s.Seller.Address)
				header = paid(s.pay(t, s.Buyer.Key, req, nil))
			}
			before := s.Balance(t, s.Buyer.Address)
			resp, body := s.do(t, "GET", "/x", header)
			requireStatus(t, resp, body, http.StatusServiceUnavailable, "")
			s.requireBalance(t, s.Buyer.Address, before)
			if s.runs.Load() != 0 {
				t.Fatal("served while the store was down")
			}
		})
	}
}
