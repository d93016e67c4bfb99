package interop

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// fetchResult is what scripts/fetch-v2.mjs and fetch-v1.mjs report.
type fetchResult struct {
	Status          int                  `json:"status"`
	Body            json.RawMessage      `json:"body"`
	PaymentResponse *x402.SettleResponse `json:"paymentResponse"`
	Sent            []struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"sent"`
}

// assertServed checks a client's view of a paid request: 200, the handler's body, and a
// successful settlement on one of the networks given. It returns the settlement transaction.
func assertServed(t *testing.T, r fetchResult, networks ...x402.Network) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, body %s", r.Status, r.Body)
	}
	if !jsonEqual(r.Body, []byte(weatherBody)) {
		t.Fatalf("body %s, want %s", r.Body, weatherBody)
	}
	if r.PaymentResponse == nil || !r.PaymentResponse.Success || !slices.Contains(networks, r.PaymentResponse.Network) {
		t.Fatalf("payment response %+v, want success on %v", r.PaymentResponse, networks)
	}
	return r.PaymentResponse.Transaction
}

func paywallRoute(price string) paywall.Route {
	return paywall.Route{Price: price, Description: "Current weather", MimeType: "application/json"}
}

func (s *stack) fetchV2Env(url string) map[string]string {
	return map[string]string{
		"PRIVATE_KEY": s.key(2), // quidtest.Buyer
		"URL":         url,
		"NETWORK":     string(s.network()),
		"ASSET":       s.Token.Address.Hex(),
	}
}

// Item 1: @x402/fetch pays a route behind quid's paywall; quid's facilitator settles it.
func TestTSFetchPaysQuidPaywall(t *testing.T) {
	requireNode(t)
	s := newStack(t, devnet.DefaultChainID)
	url := s.paidWeather(t, s.paywallConfig(), paywallRoute("$0.01")) + "/weather"

	before := s.balances(t)
	var r fetchResult
	runScript(t, "fetch-v2.mjs", s.fetchV2Env(url), &r)
	tx := assertServed(t, r, s.network())
	s.assertPaid(t, tx, 10_000, before)
	assertSentBy(t, s, tx, s.Facilitator.Relayer())
	if len(r.Sent) != 2 || r.Sent[1].Headers["payment-signature"] == "" {
		t.Fatalf("client sent %d requests, want an unpaid one and a PAYMENT-SIGNATURE retry: %+v", len(r.Sent), r.Sent)
	}
}

func (s *stack) expressV2Env(facilitatorURL string, price uint64) map[string]string {
	return map[string]string{
		"FACILITATOR_URL": facilitatorURL,
		"NETWORK":         string(s.network()),
		"PAY_TO":          s.Seller.Address.Hex(),
		"ASSET":           s.Token.Address.Hex(),
		"ASSET_NAME":      s.Token.Name,
		"ASSET_VERSION":   s.Token.Version,
		"PRICE":           strconv.FormatUint(price, 10),
	}
}

// quidWalletPays pays GET url with quid's wallet and checks the outcome on chain.
func (s *stack) quidWalletPays(t *testing.T, url string, price uint64) string {
	t.Helper()
	var paid []wallet.Payment
	before := s.balances(t)
	resp, body := get(t, s.wallet(t, &paid).Client(), url)
	if resp.StatusCode != http.StatusOK || !jsonEqual([]byte(body), []byte(weatherBody)) {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	settled, ok := wallet.Settlement(resp)
	if !ok || !settled.Success {
		t.Fatalf("no successful settlement in the response: %+v", settled)
	}
	if len(paid) != 1 || !paid[0].Settled || paid[0].Transaction != settled.Transaction {
		t.Fatalf("wallet recorded %+v, want one settled payment %s", paid, settled.Transaction)
	}
	s.assertPaid(t, settled.Transaction, price, before)
	return settled.Transaction
}

// Item 2: quid's wallet pays an @x402/express server whose facilitator is quid's.
func TestQuidWalletPaysTSExpressViaQuidFacilitator(t *testing.T) {
	requireNode(t)
	s := newStack(t, devnet.DefaultChainID)
	srv := startScript(t, "express-v2.mjs", s.expressV2Env(s.FacilitatorURL, 1000))
	tx := s.quidWalletPays(t, srv.URL+"/weather", 1000)
	assertSentBy(t, s, tx, s.Facilitator.Relayer())
}

// Item 3: quid's wallet pays an @x402/express server whose facilitator is the TypeScript one
// (@x402/core + @x402/evm), which settles on quid's devnet through viem over JSON-RPC.
func TestQuidWalletPaysTSExpressViaTSFacilitator(t *testing.T) {
	requireNode(t)
	s := newStack(t, devnet.DefaultChainID)
	fac := startScript(t, "ts-facilitator.mjs", map[string]string{
		"RPC_URL":     s.RPCURL,
		"CHAIN_ID":    strconv.FormatUint(s.chainID(), 10),
		"PRIVATE_KEY": s.key(tsRelayer),
	})
	srv := startScript(t, "express-v2.mjs", s.expressV2Env(fac.URL, 1000))
	tx := s.quidWalletPays(t, srv.URL+"/weather", 1000)

	// The settlement is the TypeScript facilitator's own transaction, sent from its relayer.
	var settled bool
	for _, line := range fac.Lines() {
		var l struct {
			Endpoint string              `json:"endpoint"`
			Response x402.SettleResponse `json:"response"`
		}
		if json.Unmarshal(line, &l) == nil && l.Endpoint == "/settle" && l.Response.Success && l.Response.Transaction == tx {
			settled = true
		}
	}
	if !settled {
		t.Fatalf("the TypeScript facilitator did not report settling %s: %s", tx, fac.Lines())
	}
	assertSentBy(t, s, tx, s.Chain.Accounts()[tsRelayer].Address)
}

func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}
