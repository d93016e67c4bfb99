package interop

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// bazaarGET is a bazaar declaration of GET /weather?city=…, as a Go seller writes it.
const bazaarGET = `{"info":{"input":{"type":"http","method":"GET","queryParams":{"city":"Lisbon"}},` +
	`"output":{"type":"json","example":` + weatherBody + `}},` +
	`"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"properties":{"input":{"type":"object"},"output":{"type":"object"}},"required":["input"]}}`

// The payment-identifier extension with the real TypeScript client: a resend of the same payment
// under the same id gets the response it bought and pays nothing more; a different payment under
// that id is refused with 409.
func TestTSFetchPaymentIdentifier(t *testing.T) {
	requireNode(t)
	s := newStack(t, devnet.DefaultChainID)
	route := paywallRoute("$0.01")
	route.PaymentIdentifier = &paywall.PaymentIdentifier{}
	url := s.paidWeather(t, s.paywallConfig(), route) + "/weather"
	const id = "pay_quid_interop_0001"

	before := s.balances(t)
	env := s.fetchV2Env(url)
	env["PAYMENT_ID"] = id
	var first fetchResult
	runScript(t, "fetch-v2.mjs", env, &first)
	tx := assertServed(t, first, s.network())
	s.assertPaid(t, tx, 10_000, before)

	// The client echoed the declaration and added the id.
	sig := first.Sent[1].Headers["payment-signature"]
	p, err := x402.DecodePaymentSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	var ext struct {
		Info struct {
			Required *bool  `json:"required"`
			ID       string `json:"id"`
		} `json:"info"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(p.Extensions[paywall.ExtensionPaymentIdentifier], &ext); err != nil || ext.Info.ID != id ||
		ext.Info.Required == nil || *ext.Info.Required || len(ext.Schema) == 0 {
		t.Fatalf("payment-identifier in the payment: %s (%v)", p.Extensions[paywall.ExtensionPaymentIdentifier], err)
	}

	// Resending that exact payment returns the same response, settlement included.
	paid := s.balances(t)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set(x402.HeaderPaymentSignature, sig)
	resp, body := do(t, http.DefaultClient, req)
	again, ok := wallet.Settlement(resp)
	if resp.StatusCode != http.StatusOK || !jsonEqual([]byte(body), []byte(weatherBody)) || !ok || again.Transaction != tx {
		t.Fatalf("resend: %d %s, settlement %+v; want the first response (tx %s)", resp.StatusCode, body, again, tx)
	}
	s.assertUnchanged(t, paid)

	// A new payment under the same id is a conflict, and costs nothing.
	var second fetchResult
	runScript(t, "fetch-v2.mjs", env, &second)
	if second.Status != http.StatusConflict {
		t.Fatalf("second payment under id %s: status %d %s, want 409", id, second.Status, second.Body)
	}
	s.assertUnchanged(t, paid)
}

// The discovery catalog (bazaar) filled by the real TypeScript clients and servers and read with
// the real TypeScript discovery client: a quid paywall route paid by @x402/fetch and an
// @x402/express route paid by quid's wallet, both declaring themselves, both verified by quid's
// facilitator.
func TestDiscoveryWithTSClients(t *testing.T) {
	requireNode(t)
	s := newStack(t, devnet.DefaultChainID)

	route := paywallRoute("$0.01")
	route.Extensions = x402.Object{facilitator.ExtensionBazaar: json.RawMessage(bazaarGET)}
	quidURL := s.paidWeather(t, s.paywallConfig(), route) + "/weather"
	var r fetchResult
	runScript(t, "fetch-v2.mjs", s.fetchV2Env(quidURL+"?city=Lisbon"), &r)
	assertServed(t, r, s.network())

	env := s.expressV2Env(s.FacilitatorURL, 1000)
	env["BAZAAR"] = "1"
	srv := startScript(t, "express-v2.mjs", env)
	s.quidWalletPays(t, srv.URL+"/weather", 1000)

	type listing struct {
		X402Version int `json:"x402Version"`
		Items       []struct {
			Resource    string                     `json:"resource"`
			Type        string                     `json:"type"`
			X402Version int                        `json:"x402Version"`
			Accepts     []x402.PaymentRequirements `json:"accepts"`
			LastUpdated string                     `json:"lastUpdated"`
			Extensions  map[string]struct {
				Info struct {
					Input struct {
						Type   string `json:"type"`
						Method string `json:"method"`
					} `json:"input"`
				} `json:"info"`
			} `json:"extensions"`
		} `json:"items"`
		Pagination struct{ Limit, Offset, Total int } `json:"pagination"`
	}
	var all listing
	runScript(t, "discovery.mjs", map[string]string{"FACILITATOR_URL": s.FacilitatorURL, "TYPE": "http"}, &all)
	if all.X402Version != 2 || all.Pagination.Total != 2 || len(all.Items) != 2 {
		t.Fatalf("catalog: %+v", all)
	}
	for i, want := range []struct {
		resource string
		amount   string
	}{{quidURL, "10000"}, {srv.URL + "/weather", "1000"}} {
		it := all.Items[i]
		bz := it.Extensions[facilitator.ExtensionBazaar]
		if it.Resource != want.resource || it.Type != "http" || it.X402Version != 2 || it.LastUpdated == "" ||
			len(it.Accepts) != 1 || it.Accepts[0].Amount != want.amount || it.Accepts[0].PayTo != s.Seller.Address.Hex() ||
			bz.Info.Input.Type != "http" || bz.Info.Input.Method != "GET" {
			t.Errorf("item %d: %+v, want %s at %s", i, it, want.resource, want.amount)
		}
	}

	var page listing
	runScript(t, "discovery.mjs", map[string]string{"FACILITATOR_URL": s.FacilitatorURL, "LIMIT": "1", "OFFSET": "1"}, &page)
	if page.Pagination.Limit != 1 || page.Pagination.Offset != 1 || page.Pagination.Total != 2 ||
		len(page.Items) != 1 || page.Items[0].Resource != srv.URL+"/weather" {
		t.Fatalf("second page: %+v", page)
	}
}
