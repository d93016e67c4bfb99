package paywall_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

func TestDeferredRouteServesOnCreditAndSettlesInABatch(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{Facilitator: func(c *facilitator.Config) {
		c.BatchSettler = devnet.BatchSettlerAddress
		c.MaxDeferred = evm.NewAmount(5 * price) // five requests of credit per payer
	}})
	mw, err := paywall.Middleware(paywall.Config{Facilitator: env.Facilitator, ChainID: env.Chain.ChainID(), PayTo: env.Seller.Address, Assets: evm.NewRegistry(env.Token)},
		paywall.Route{Price: "$0.01", Settle: paywall.SettleDeferred})
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "data")
	})))
	defer srv.Close()
	w, _ := wallet.New(wallet.Config{Key: env.Buyer.Key, Assets: evm.NewRegistry(env.Token), Max: "0.01"})
	get := func() *http.Response {
		t.Helper()
		resp, err := w.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	sellerBefore := env.Balance(t, env.Seller.Address)

	// A failed request is withdrawn and never charged.
	fail.Store(true)
	if resp := get(); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d", resp.StatusCode)
	}
	fail.Store(false)
	// Five requests are served at once, on credit: nothing has moved yet.
	for range 5 {
		if resp := get(); resp.StatusCode != http.StatusOK || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
			t.Fatalf("status %d, PAYMENT-RESPONSE %q; want 200 served before settlement", resp.StatusCode, resp.Header.Get(x402.HeaderPaymentResponse))
		}
	}
	if got := env.Balance(t, env.Seller.Address); got.Cmp(sellerBefore) != 0 {
		t.Fatalf("seller paid %s before any batch", got)
	}
	// The sixth would exceed the payer's credit: it is settled before it is served.
	resp := get()
	if st, ok := wallet.Settlement(resp); resp.StatusCode != http.StatusOK || !ok || !st.Success {
		t.Fatalf("past the credit cap: status %d, settlement %+v", resp.StatusCode, st)
	}
	afterSixth, _ := sellerBefore.Add(evm.NewAmount(price))
	if got := env.Balance(t, env.Seller.Address); got.Cmp(afterSixth) != 0 {
		t.Fatalf("seller balance %s after the sixth, want %s", got, afterSixth)
	}
	// One batch settles the five served on credit, and not the withdrawn one.
	if n, err := env.Facilitator.SettleQueued(context.Background()); err != nil || n != 5 {
		t.Fatalf("batch settled %d (%v), want 5", n, err)
	}
	want, _ := sellerBefore.Add(evm.NewAmount(6 * price))
	if got := env.Balance(t, env.Seller.Address); got.Cmp(want) != 0 {
		t.Fatalf("seller balance %s, want %s", got, want)
	}
}

func TestDeferredRouteNeedsAFacilitatorThatDefers(t *testing.T) {
	t.Parallel()
	_, err := paywall.Middleware(paywall.Config{Facilitator: facilitator.NewClient("http://127.0.0.1:1"), ChainID: 31337,
		PayTo: evm.DevTokenAddress, Assets: evm.NewRegistry(evm.DevToken(31337))}, paywall.Route{Price: "$0.01", Settle: paywall.SettleDeferred})
	if err == nil {
		t.Fatal("a deferred route was accepted with a facilitator that cannot defer")
	}
}
