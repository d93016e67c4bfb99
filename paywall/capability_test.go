package paywall_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/capability"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

func capabilityShop(t *testing.T, uses uint64) *shop {
	t.Helper()
	return newShop(t, nil,
		paywall.Route{Method: "GET", Path: "/data/*", Price: "$0.01",
			Capability: &paywall.CapabilityPolicy{TTL: time.Hour, Uses: uses, Scope: []string{"GET /data/*"}}},
		paywall.Route{Method: "GET", Path: "/admin", Price: "$0.01"})
}

// buyToken pays for /data/a and returns the capability token the response carries.
func (s *shop) buyToken(t *testing.T) string {
	t.Helper()
	req := s.offer(t, "GET", "/data/a", nil).Accepts[0]
	resp, body := s.do(t, "GET", "/data/a", paid(s.pay(t, s.Buyer.Key, req, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
	token := resp.Header.Get(paywall.HeaderCapability)
	if token == "" || resp.Header.Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("paid response without a capability token or a receipt: %v", resp.Header)
	}
	return token
}

func withToken(token string) map[string]string {
	return map[string]string{paywall.HeaderCapability: token}
}

// A settled payment earns a token; the token skips the 402 until its uses run out, and then
// the normal 402 comes back with the reason. Nothing more is paid meanwhile.
func TestCapabilityTokenSkipsPaymentUntilUsedUp(t *testing.T) {
	t.Parallel()
	s := capabilityShop(t, 3)
	token := s.buyToken(t)
	before := s.Balance(t, s.Buyer.Address)
	for _, p := range []string{"/data/b", "/data/c"} {
		resp, body := s.do(t, "GET", p, withToken(token))
		requireStatus(t, resp, body, http.StatusOK, "")
	}
	resp, body := s.do(t, "GET", "/data/d", map[string]string{"Authorization": "Quid " + token})
	requireStatus(t, resp, body, http.StatusOK, "")
	resp, body = s.do(t, "GET", "/data/e", withToken(token))
	requireStatus(t, resp, body, http.StatusPaymentRequired, paywall.ReasonCapabilityUsedUp)
	s.requireBalance(t, s.Buyer.Address, before)
	if n := s.runs.Load(); n != 4 {
		t.Fatalf("handler ran %d times, want 4 (one paid, three on the token)", n)
	}
	// Requests on tokens reach the store within about a second, in one write.
	deadline := time.Now().Add(10 * time.Second)
	for {
		payers, _ := s.db.Payers(t.Context(), 0)
		if len(payers) == 1 && payers[0].Requests == 4 && payers[0].Payments == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payer record %+v, want 4 requests and 1 payment", payers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Forged, expired, out-of-scope, wrongly attenuated and unknown-caveat tokens are refused with
// the route's 402 and a reason; attenuations that narrow are honoured.
func TestCapabilityTokenRefusals(t *testing.T) {
	t.Parallel()
	s := capabilityShop(t, 0)
	token := s.buyToken(t)
	id, caveats, err := capability.Inspect(token)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := capability.Keys{Secret: []byte("not the seller's secret, but long enough")}.Mint(id,
		capability.Payer(s.Buyer.Address), capability.Expires(time.Now().Add(time.Hour)), capability.Scope("/*"))
	if err != nil {
		t.Fatal(err)
	}
	attenuate := func(c ...capability.Caveat) string {
		out, err := capability.Attenuate(token, c...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The minted token has no uses caveat, so its own requests ("valid" below) are bounded by
	// time alone and not counted; a "uses 2" attenuation gets exactly two.
	narrow := attenuate(capability.Scope("GET /data/x"), capability.Uses(2))
	for _, tc := range []struct {
		name   string
		token  string
		path   string
		status int
		reason x402.Reason
	}{
		{"valid", token, "/data/z", http.StatusOK, ""},
		{"out of scope", token, "/admin", http.StatusPaymentRequired, paywall.ReasonCapabilityScope},
		{"escaping the scope with dot segments", token, "/data/../admin", http.StatusPaymentRequired, ""},
		{"forged", forged, "/data/z", http.StatusPaymentRequired, paywall.ReasonCapabilityInvalid},
		{"widened by attenuation", attenuate(capability.Scope("/*")), "/admin", http.StatusPaymentRequired, paywall.ReasonCapabilityScope},
		{"another payer added", attenuate(capability.Payer(common.HexToAddress("0xBEEF"))), "/data/z", http.StatusPaymentRequired, paywall.ReasonCapabilityInvalid},
		{"narrowed, inside", narrow, "/data/x", http.StatusOK, ""},
		{"narrowed, inside again", narrow, "/data/x", http.StatusOK, ""},
		{"narrowed, outside", narrow, "/data/y", http.StatusPaymentRequired, paywall.ReasonCapabilityScope},
		{"narrowed, used up", narrow, "/data/x", http.StatusPaymentRequired, paywall.ReasonCapabilityUsedUp},
		{"earlier expiry passed", attenuate(capability.Expires(time.Now().Add(-time.Minute))), "/data/z", http.StatusPaymentRequired, paywall.ReasonCapabilityExpired},
		{"garbage", "garbage", "/data/z", http.StatusPaymentRequired, paywall.ReasonCapabilityInvalid},
		{"truncated", token[:len(token)-4], "/data/z", http.StatusPaymentRequired, paywall.ReasonCapabilityInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.do(t, "GET", tc.path, withToken(tc.token))
			requireStatus(t, resp, body, tc.status, tc.reason)
		})
	}
	s.clock.advance(2 * time.Hour)
	resp, body := s.do(t, "GET", "/data/z", withToken(token))
	requireStatus(t, resp, body, http.StatusPaymentRequired, paywall.ReasonCapabilityExpired)
	if len(caveats) != 3 {
		t.Fatalf("minted caveats %v, want payer, expiry, scope", caveats)
	}
}

// Of many concurrent requests presenting a one-use token, exactly one is served.
func TestOneUseTokenServesOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := capabilityShop(t, 1)
	token := s.buyToken(t)
	var served atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := s.do(t, "GET", "/data/b", withToken(token))
			switch resp.StatusCode {
			case http.StatusOK:
				served.Add(1)
			case http.StatusPaymentRequired:
				if r := reasonOf(t, resp, body); r != string(paywall.ReasonCapabilityUsedUp) {
					t.Errorf("refused with %q", r)
				}
			default:
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	if served.Load() != 1 {
		t.Fatalf("%d of 20 requests served on a one-use token", served.Load())
	}
}

// A token's payer is subject to access policy like a paying one: blocking it stops the token.
func TestBlockedPayerCannotUseItsToken(t *testing.T) {
	t.Parallel()
	s := capabilityShop(t, 0)
	token := s.buyToken(t)
	if err := s.db.BlockPayer(t.Context(), s.Buyer.Address, "chargeback"); err != nil {
		t.Fatal(err)
	}
	resp, body := s.do(t, "GET", "/data/b", withToken(token))
	requireStatus(t, resp, body, http.StatusForbidden, paywall.ReasonPayerBlocked)
}

// An invalid token on a request that also carries a payment falls back to the payment.
func TestInvalidTokenWithPaymentPays(t *testing.T) {
	t.Parallel()
	s := capabilityShop(t, 0)
	req := s.offer(t, "GET", "/data/a", nil).Accepts[0]
	header := paid(s.pay(t, s.Buyer.Key, req, nil))
	header[paywall.HeaderCapability] = "garbage"
	resp, body := s.do(t, "GET", "/data/a", header)
	requireStatus(t, resp, body, http.StatusOK, "")
}
