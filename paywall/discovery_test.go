package paywall_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

var (
	inputSchema  = json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)
	outputSchema = json.RawMessage(`{"type":"object","properties":{"summary":{"type":"string"}}}`)
	terms        = &paywall.Terms{Expiry: "summaries are valid for 24h", Resale: "no resale", DataUse: "inputs are not stored"}
)

func discoveryShop(t *testing.T) *shop {
	return newShop(t, nil,
		paywall.Route{Method: "POST", Path: "/summarize", Price: "$0.02", KnownPrice: "$0.01", Description: "summaries",
			MimeType: "application/json", InputSchema: inputSchema, OutputSchema: outputSchema, Terms: terms,
			Settle: paywall.SettleBefore, Quote: &paywall.QuotePolicy{},
			Capability: &paywall.CapabilityPolicy{TTL: 10 * time.Minute, Uses: 5},
			Policy:     &paywall.Policy{Rate: paywall.Rate{Requests: 10, Per: time.Minute}, Spend: paywall.SpendLimit{Max: "$1", Window: 24 * time.Hour}}},
		paywall.Route{Method: "GET", Path: "/quote-of-the-day", Pricer: paywall.PricerFunc(func(*http.Request, paywall.Buyer) (string, error) { return "$0.001", nil })},
	)
}

// Discovery lists every paid route with its price, schemas, terms, limits and offers.
func TestDiscoveryListsPaidRoutes(t *testing.T) {
	t.Parallel()
	s := discoveryShop(t)
	resp, body := s.do(t, "GET", paywall.DiscoveryPath, nil)
	requireStatus(t, resp, body, http.StatusOK, "")
	var doc paywall.DiscoveryDocument
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.X402Version != 2 || len(doc.Resources) != 2 || doc.QuoteURL != paywall.QuotePath {
		t.Fatalf("document %s", body)
	}
	sum := doc.Resources[0]
	if sum.Method != "POST" || sum.Path != "/summarize" || len(sum.Accepts) != 1 || sum.Accepts[0].Amount != "20000" ||
		sum.KnownPrice != "10000" || sum.Accepts[0].PayTo != s.Seller.Address.Hex() || sum.Accepts[0].Network != x402.EIP155(s.Chain.ChainID()) {
		t.Fatalf("summarize %+v", sum)
	}
	if string(sum.InputSchema) != string(inputSchema) || string(sum.OutputSchema) != string(outputSchema) {
		t.Fatalf("schemas %s %s", sum.InputSchema, sum.OutputSchema)
	}
	if sum.Settle != "before" || !sum.Quotable || *sum.Terms != *terms || sum.Capability == nil || sum.Capability.Uses != 5 ||
		sum.Capability.TTLSeconds != 600 || sum.Limits == nil || sum.Limits.Requests != 10 || sum.Limits.SpendMax != "1000000" {
		t.Fatalf("disclosure %+v", sum.Disclosure)
	}
	dyn := doc.Resources[1]
	if !dyn.DynamicPrice || len(dyn.Accepts) != 0 || dyn.Settle != "after" {
		t.Fatalf("dynamic route %+v", dyn)
	}
	resp, body = s.do(t, "POST", paywall.DiscoveryPath, nil)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("discovery answered POST: %s", body)
	}
}

// The 402 discloses the same terms in each requirement's extra, and declares the route's
// schemas in the bazaar extension; a buyer echoing them (or leaving the disclosure out) pays.
func TestRequirementsDiscloseTermsAndBazaar(t *testing.T) {
	t.Parallel()
	s := discoveryShop(t)
	pr := s.offer(t, "POST", "/summarize", nil)
	var d paywall.Disclosure
	if err := json.Unmarshal(pr.Accepts[0].Extra[paywall.ExtraKey], &d); err != nil {
		t.Fatal(err)
	}
	if d.Terms == nil || *d.Terms != *terms || d.Capability == nil || d.Limits == nil || d.Settle != "before" {
		t.Fatalf("disclosure %s", pr.Accepts[0].Extra[paywall.ExtraKey])
	}
	var bazaar struct {
		Info struct {
			Input struct {
				Type, Method, BodyType string
			}
			Output struct{ Type string }
		}
		Schema struct {
			Properties struct {
				Input struct {
					Properties struct{ Body json.RawMessage }
				}
				Output struct {
					Properties struct{ Example json.RawMessage }
				}
			}
		}
	}
	if err := json.Unmarshal(pr.Extensions[paywall.ExtensionBazaar], &bazaar); err != nil {
		t.Fatal(err)
	}
	if bazaar.Info.Input.Type != "http" || bazaar.Info.Input.Method != "POST" || bazaar.Info.Input.BodyType != "json" ||
		string(bazaar.Schema.Properties.Input.Properties.Body) != string(inputSchema) ||
		string(bazaar.Schema.Properties.Output.Properties.Example) != string(outputSchema) {
		t.Fatalf("bazaar %s", pr.Extensions[paywall.ExtensionBazaar])
	}
	// Echoing the requirements as offered pays; so does a buyer that drops the disclosure.
	resp, body := s.do(t, "POST", "/summarize", paid(s.pay(t, s.Buyer.Key, pr.Accepts[0], nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
	if resp.Header.Get(paywall.HeaderCapability) == "" {
		t.Fatal("no capability token after a settled payment")
	}
	bare := pr.Accepts[0]
	bare.Extra = x402.Object{"name": bare.Extra["name"], "version": bare.Extra["version"]}
	bare.Amount = "10000" // now a known buyer
	resp, body = s.do(t, "POST", "/summarize", paid(s.pay(t, s.Buyer.Key, bare, nil)))
	requireStatus(t, resp, body, http.StatusOK, "")
}
