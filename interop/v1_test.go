package interop

import (
	"net/http"
	"strconv"
	"testing"
)

// baseSepolia is the chain id v1 calls "base-sepolia". v1 names networks from a fixed table, so
// the devnet takes this id for the legacy clients and servers to accept it.
const baseSepolia = 84532

// Item 4a: the legacy v1 client x402-fetch 1.2 pays quid's paywall in v1 mode.
func TestLegacyFetchPaysQuidPaywallV1(t *testing.T) {
	requireNode(t)
	s := newStack(t, baseSepolia)
	cfg := s.paywallConfig()
	cfg.V1Body = true
	url := s.paidWeather(t, cfg, paywallRoute("$0.01")) + "/weather"

	before := s.balances(t)
	var r fetchResult
	runScript(t, "fetch-v1.mjs", map[string]string{
		"PRIVATE_KEY": s.key(2), // quidtest.Buyer
		"URL":         url,
		"RPC_URL":     s.RPCURL,
	}, &r)
	// A v1 X-PAYMENT-RESPONSE names the network as v1 does.
	tx := assertServed(t, r, "base-sepolia")
	s.assertPaid(t, tx, 10_000, before)
	assertSentBy(t, s, tx, s.Facilitator.Relayer())
	if len(r.Sent) != 2 || r.Sent[1].Headers["x-payment"] == "" {
		t.Fatalf("client sent %d requests, want an unpaid one and an X-PAYMENT retry: %+v", len(r.Sent), r.Sent)
	}
}

// Item 4b: quid's wallet pays a legacy v1 server, x402-express 1.2, whose facilitator is quid's.
func TestQuidWalletPaysLegacyExpressV1(t *testing.T) {
	requireNode(t)
	s := newStack(t, baseSepolia)
	srv := startScript(t, "express-v1.mjs", map[string]string{
		"FACILITATOR_URL": s.FacilitatorURL,
		"PAY_TO":          s.Seller.Address.Hex(),
		"ASSET":           s.Token.Address.Hex(),
		"ASSET_NAME":      s.Token.Name,
		"ASSET_VERSION":   s.Token.Version,
		"ASSET_DECIMALS":  strconv.Itoa(int(s.Token.Decimals)),
		"PRICE":           "1000",
	})
	// A v1 server answers with a JSON body and no PAYMENT-REQUIRED header.
	resp, _ := get(t, http.DefaultClient, srv.URL+"/weather")
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("PAYMENT-REQUIRED") != "" {
		t.Fatalf("unpaid request: %d with PAYMENT-REQUIRED %q, want a v1 402", resp.StatusCode, resp.Header.Get("PAYMENT-REQUIRED"))
	}
	tx := s.quidWalletPays(t, srv.URL+"/weather", 1000)
	assertSentBy(t, s, tx, s.Facilitator.Relayer())
}
