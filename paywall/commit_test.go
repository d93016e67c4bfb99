package paywall_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// With SettleOnCommit the payment settles when the handler commits, and the stream then flows
// through unbuffered: the buyer reads the first event while the handler is still running.
func TestSettleOnCommitStreams(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/events", Price: "$0.01", Settle: paywall.SettleOnCommit})
	release := make(chan struct{})
	s.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	req := s.offer(t, "GET", "/events", nil).Accepts[0]
	sellerBefore := s.Balance(t, s.Seller.Address)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a buffered stream would never answer
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/events", nil)
	hr.Header.Set(x402.HeaderPaymentSignature, s.pay(t, s.Buyer.Key, req, nil))
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("no response while the handler still streams: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(x402.HeaderPaymentResponse) == "" || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	want, _ := sellerBefore.Add(evm.NewAmount(10_000))
	s.requireBalance(t, s.Seller.Address, want) // settled before the first byte
	lines := bufio.NewReader(resp.Body)
	if first, err := lines.ReadString('\n'); err != nil || first != "data: one\n" {
		t.Fatalf("first event %q, %v", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(lines)
	if string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest of the stream %q", rest)
	}
}

// When settlement fails at the commit point, nothing the handler wrote reaches the buyer, and
// the handler's writes fail so it can stop.
func TestSettleOnCommitWithholdsOutputWhenSettlementFails(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/events", Price: "$0.01", Settle: paywall.SettleOnCommit})
	req := s.offer(t, "GET", "/events", nil).Accepts[0]
	auth := quidtest.Authorization(t, s.Buyer.Key, req)
	header := quidtest.Header(t, quidtest.Payload(t, s.Buyer.Key, s.Token.Domain(), auth, req))
	writeErr := make(chan error, 1)
	s.setHandler(func(w http.ResponseWriter, r *http.Request) {
		s.Cancel(t, s.Buyer.Key, auth) // the payer cancels after verification
		w.Header().Set("X-Secret", "1")
		_, err := io.WriteString(w, "secret")
		writeErr <- err
	})
	resp, body := s.do(t, "GET", "/events", paid(header))
	requireStatus(t, resp, body, http.StatusPaymentRequired, "")
	if strings.Contains(body, "secret") || resp.Header.Get("X-Secret") != "" {
		t.Fatalf("the handler's output leaked: %v %s", resp.Header, body)
	}
	if err := <-writeErr; err == nil {
		t.Fatal("the handler's write succeeded after settlement failed")
	}
}

// What a failing handler costs the buyer, per settle mode. After (default) and at commit: the
// handler fails before anything is settled, so nothing is charged and the authorization can be
// used again. Before: the payment was settled before the handler ran; quid does not refund on
// chain, and records the payment as unserved for the seller to make good.
func TestFailingHandlerPerSettleMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode     paywall.SettleMode
		charged  bool
		unserved int
	}{
		{paywall.SettleAfter, false, 0},
		{paywall.SettleOnCommit, false, 0},
		{paywall.SettleBefore, true, 1},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			t.Parallel()
			s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/job", Price: "$0.01", Settle: tc.mode,
				Policy: &paywall.Policy{Spend: paywall.SpendLimit{Max: "$0.01", Window: time.Hour}}})
			s.setHandler(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "upstream broke", http.StatusBadGateway)
			})
			req := s.offer(t, "GET", "/job", nil).Accepts[0]
			header := s.pay(t, s.Buyer.Key, req, nil)
			before := s.Balance(t, s.Buyer.Address)
			resp, body := s.do(t, "GET", "/job", paid(header))
			requireStatus(t, resp, body, http.StatusBadGateway, "")
			want := before
			if tc.charged {
				want, _ = before.Sub(evm.NewAmount(10_000))
			}
			s.requireBalance(t, s.Buyer.Address, want)
			unserved, err := s.db.Payments(t.Context(), store.PaymentFilter{Unserved: true})
			if err != nil || len(unserved) != tc.unserved {
				t.Fatalf("unserved payments %+v, %v; want %d", unserved, err, tc.unserved)
			}
			if tc.charged {
				if unserved[0].Status != http.StatusBadGateway || unserved[0].Tx == "" || unserved[0].Payer != s.Buyer.Address {
					t.Fatalf("unserved record %+v", unserved[0])
				}
				return
			}
			// Not charged: the same authorization buys the resource once the upstream is back,
			// and the spend cap had given back its share.
			s.handler.Store(nil)
			resp, body = s.do(t, "GET", "/job", paid(header))
			requireStatus(t, resp, body, http.StatusOK, "")
			want, _ = before.Sub(evm.NewAmount(10_000))
			s.requireBalance(t, s.Buyer.Address, want)
		})
	}
}
