package paywall_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
)

// The buyer's wallet pays a route with every seller feature on (disclosure in extra, policy,
// known-buyer price, capability token, settle at commit); the token it earns then buys more
// without paying, and the seller's records show it all.
func TestWalletPaysAFullFeaturedRoute(t *testing.T) {
	t.Parallel()
	for _, mode := range []paywall.SettleMode{paywall.SettleAfter, paywall.SettleOnCommit} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			s := newShop(t, nil, paywall.Route{Method: "GET", Path: "/weather", Price: "$0.02", KnownPrice: "$0.01",
				Settle: mode, Terms: terms, OutputSchema: outputSchema,
				Policy:     &paywall.Policy{Rate: paywall.Rate{Requests: 100, Per: time.Minute}, Spend: paywall.SpendLimit{Max: "$1", Window: time.Hour}},
				Capability: &paywall.CapabilityPolicy{Uses: 2}})
			w, err := wallet.New(wallet.Config{Key: s.Buyer.Key, Assets: evm.NewRegistry(s.Token), Max: "0.05"})
			if err != nil {
				t.Fatal(err)
			}
			before := s.Balance(t, s.Buyer.Address)
			resp, err := w.Client().Get(s.srv.URL + "/weather")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			requireStatus(t, resp, string(body), http.StatusOK, "")
			token := resp.Header.Get(paywall.HeaderCapability)
			if token == "" {
				t.Fatal("no capability token")
			}
			want, _ := before.Sub(evm.NewAmount(20_000))
			s.requireBalance(t, s.Buyer.Address, want)
			for range 2 {
				resp, body := s.do(t, "GET", "/weather", withToken(token))
				requireStatus(t, resp, body, http.StatusOK, "")
			}
			s.requireBalance(t, s.Buyer.Address, want)
			// Now known: the wallet pays the known buyer's price, naming itself in advance.
			resp, body2 := s.do(t, "GET", "/weather", map[string]string{paywall.HeaderPayer: s.Buyer.Address.Hex()})
			pr := requirePR(t, resp, body2)
			if pr.Accepts[0].Amount != "10000" {
				t.Fatalf("known buyer offered %s", pr.Accepts[0].Amount)
			}
			rev, err := s.db.Revenue(t.Context())
			if err != nil || len(rev) != 1 || rev[0].Route != "GET /weather" || rev[0].Total.Cmp(evm.NewAmount(20_000)) != 0 {
				t.Fatalf("revenue %+v, %v", rev, err)
			}
		})
	}
}
