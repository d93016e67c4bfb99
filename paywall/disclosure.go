package paywall

import (
	"encoding/json"
	"net/http"

	"github.com/quidpay/quid/x402"
)

// ExtraKey is the member of each requirement's extra that discloses quid's terms (Disclosure).
const ExtraKey = "quid"

// Terms are a route's conditions of sale, disclosed before payment.
type Terms struct {
	// Expiry says how long the response (or the data it carries) stays valid.
	Expiry string `json:"expiry,omitempty"`
	// Limits describes limits on use in words; enforced limits are disclosed in Limits.
	Limits string `json:"limits,omitempty"`
	// Resale says whether and how the response may be resold.
	Resale string `json:"resale,omitempty"`
	// DataUse says what the seller does with the request's data.
	DataUse string `json:"dataUse,omitempty"`
}

// Disclosure is what a buyer learns before paying, under extra["quid"] of every requirement and
// in discovery.
type Disclosure struct {
	// Settle is when the payment is settled: "after", "before", "deferred" or "commit".
	Settle string `json:"settle"`
	// DynamicPrice reports that the price is decided per request.
	DynamicPrice bool             `json:"dynamicPrice,omitempty"`
	Quotable     bool             `json:"quotable,omitempty"`
	Terms        *Terms           `json:"terms,omitempty"`
	Limits       *Limits          `json:"limits,omitempty"`
	Capability   *CapabilityOffer `json:"capability,omitempty"`
	// Quote holds the terms of the quote the request presented.
	Quote *QuoteTerms `json:"quote,omitempty"`
}

// Limits are the enforced limits of a route's access policy.
type Limits struct {
	Requests    int    `json:"requests,omitempty"`
	PerSeconds  int64  `json:"perSeconds,omitempty"`
	SpendMax    string `json:"spendMax,omitempty"` // atomic units of the route's asset
	SpendWindow int64  `json:"spendWindowSeconds,omitempty"`
	MinBalance  string `json:"minBalance,omitempty"` // atomic units of the route's asset
	Allowlist   bool   `json:"allowlist,omitempty"`  // only listed payers may buy
	Identity    bool   `json:"identity,omitempty"`   // the seller checks the buyer's identity
}

// CapabilityOffer describes the capability token a settled payment earns.
type CapabilityOffer struct {
	Header     string   `json:"header"`
	TTLSeconds int64    `json:"ttlSeconds"`
	Uses       uint64   `json:"uses,omitempty"`
	Scope      []string `json:"scope,omitempty"`
}

// QuoteTerms are the terms of one quote.
type QuoteTerms struct {
	ID        string `json:"id"`
	ExpiresAt int64  `json:"expiresAt"`
	Nonce     string `json:"nonce"`
}

// DiscoveryPath is where Discovery is meant to be mounted.
const DiscoveryPath = "/.well-known/x402"

// DiscoveryDocument lists a seller's paid routes.
type DiscoveryDocument struct {
	X402Version int                 `json:"x402Version"`
	Resources   []DiscoveryResource `json:"resources"`
	// QuoteURL is where quotes are asked for, when a route offers them.
	QuoteURL string `json:"quoteUrl,omitempty"`
}

// DiscoveryResource is one paid route.
type DiscoveryResource struct {
	Method      string `json:"method,omitempty"`
	Path        string `json:"path"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
	// Accepts are the requirements at the published price (for unknown buyers); empty when the
	// price is decided per request only.
	Accepts []x402.PaymentRequirements `json:"accepts,omitempty"`
	// KnownPrice is the known buyers' price in atomic units, when it differs.
	KnownPrice   string          `json:"knownPrice,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	Disclosure
}

// Discovery serves GET /.well-known/x402: the machine-readable price list of every route
// charged through this paywall with a Path, so agents can compare sellers before calling.
func (p *Paywall) Discovery() http.Handler {
	return http.HandlerFunc(p.serveDiscovery)
}

func (p *Paywall) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	doc := DiscoveryDocument{X402Version: x402.V2, Resources: []DiscoveryResource{}}
	rail := &x402Rail{cfg: &p.cfg}
	p.mu.RLock()
	for _, rt := range p.routes {
		res := DiscoveryResource{Method: rt.Method, Path: rt.Path, Description: rt.Description, MimeType: rt.MimeType,
			InputSchema: rt.InputSchema, OutputSchema: rt.OutputSchema, Disclosure: rt.disclosure}
		if rt.fixed.set && !rt.fixed.amount.IsZero() {
			charge := &Charge{Asset: rt.fixed.asset, Amount: rt.fixed.amount, MaxTimeout: p.cfg.MaxTimeout, Extra: x402.Object{ExtraKey: rt.extra}}
			res.Accepts = []x402.PaymentRequirements{rail.offered(charge)}
		}
		if rt.known.set {
			res.KnownPrice = rt.known.amount.String()
		}
		if rt.Quote != nil {
			doc.QuoteURL = QuotePath
		}
		doc.Resources = append(doc.Resources, res)
	}
	p.mu.RUnlock()
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, doc)
}
