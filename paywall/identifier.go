package paywall

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quidpay/quid/x402"
)

// ExtensionPaymentIdentifier is the key of the x402 payment-identifier extension: an idempotency
// key a buyer attaches to a payment, so that resending the same payment returns the response it
// bought instead of failing as a replay.
//
// It is handled here, by the resource server, because what it protects is the response: only
// the seller has it, and a resend arrives after the authorization was spent, when the
// facilitator would rightly refuse it. The facilitator is idempotent per authorization already.
const ExtensionPaymentIdentifier = "payment-identifier"

// PaymentIdentifier turns on the payment-identifier extension for a route.
//
//   - a new id is served as usual;
//   - the same id with the same payment (the exact PAYMENT-SIGNATURE, same method and URL) gets the
//     response the first request was served, PAYMENT-RESPONSE included, and pays nothing again;
//     while the first is still running, the resend waits for it;
//   - the same id with anything else is refused with 409 Conflict;
//   - with Required, a payment without an id is refused with 400 Bad Request.
//
// Only paid responses are kept: after a refusal the buyer may retry under the same id.
type PaymentIdentifier struct {
	// Required refuses payments that carry no id.
	Required bool
	// TTL is how long a paid response is kept for resends. Default: one hour.
	TTL time.Duration
	// MaxEntries and MaxBytes bound how many responses are kept and the bytes of their bodies;
	// the oldest goes first. A body over a sixteenth of MaxBytes is served but not kept.
	// Defaults: 10,000 and 32 MiB.
	MaxEntries int
	MaxBytes   int
}

// Defaults of PaymentIdentifier.
const (
	DefaultIdentifierTTL        = time.Hour
	DefaultIdentifierMaxEntries = 10_000
	DefaultIdentifierMaxBytes   = 32 << 20
)

// paymentIDPattern is the id format of the extension: 16 to 128 of [A-Za-z0-9_-].
var paymentIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{16,128}$`)

// paymentIdentifierSchema is the JSON Schema the extension's declaration carries, as the
// reference server declares it.
const paymentIdentifierSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"properties":{"required":{"type":"boolean"},"id":{"type":"string","minLength":16,"maxLength":128,"pattern":"^[a-zA-Z0-9_-]+$"}},` +
	`"required":["required"]}`

// routeExtensions returns the extensions a route declares in its 402: its own, plus the
// payment-identifier declaration when the route has one.
func routeExtensions(route Route) x402.Object {
	schemas := len(route.InputSchema) > 0 || len(route.OutputSchema) > 0
	if len(route.Extensions) == 0 && route.PaymentIdentifier == nil && !schemas {
		return nil
	}
	out := make(x402.Object, len(route.Extensions)+2)
	for k, v := range route.Extensions {
		out[k] = v
	}
	if _, declared := out[ExtensionBazaar]; schemas && !declared {
		out[ExtensionBazaar] = bazaarDeclaration(route)
	}
	if route.PaymentIdentifier != nil {
		required := "false"
		if route.PaymentIdentifier.Required {
			required = "true"
		}
		out[ExtensionPaymentIdentifier] = json.RawMessage(`{"info":{"required":` + required + `},"schema":` + paymentIdentifierSchema + `}`)
	}
	return out
}

// identifiers is one route's memory of payment ids. A nil *identifiers serves every request
// directly.
type identifiers struct {
	cfg PaymentIdentifier
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*idEntry
	bytes   int // body bytes of the kept responses
}

type idEntry struct {
	fingerprint [32]byte
	created     time.Time
	done        chan struct{} // closed when the first request has its response
	resp        *recordedResponse
	kept        bool // resp is a paid response, kept until expires
	expires     time.Time
}

func newIdentifiers(cfg *PaymentIdentifier, now func() time.Time) *identifiers {
	if cfg == nil {
		return nil
	}
	c := *cfg
	if c.TTL <= 0 {
		c.TTL = DefaultIdentifierTTL
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultIdentifierMaxEntries
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultIdentifierMaxBytes
	}
	return &identifiers{cfg: c, now: now, entries: map[string]*idEntry{}}
}

// serve runs serve for r unless r resends a payment id this route has answered, or misuses one.
func (ids *identifiers) serve(w http.ResponseWriter, r *http.Request, serve http.HandlerFunc) {
	if ids == nil {
		serve(w, r)
		return
	}
	header := strings.TrimSpace(r.Header.Get(x402.HeaderPaymentSignature))
	if header == "" {
		serve(w, r) // unpaid, or a v1 payment: the extension is v2's
		return
	}
	p, err := x402.DecodePaymentSignature(header)
	if err != nil {
		serve(w, r) // the paywall refuses it in its own words
		return
	}
	id, valid := paymentID(p)
	switch {
	case !valid:
		writeJSONError(w, http.StatusBadRequest, "payment-identifier id must be 16 to 128 letters, digits, '-' or '_'")
		return
	case id == "" && ids.cfg.Required:
		writeJSONError(w, http.StatusBadRequest, "this route requires a payment-identifier id")
		return
	case id == "":
		serve(w, r)
		return
	}
	fp := sha256.Sum256([]byte(r.Method + "\x00" + r.URL.RequestURI() + "\x00" + header))

	now := ids.now()
	ids.mu.Lock()
	e, seen := ids.entries[id]
	if seen && e.kept && now.After(e.expires) {
		ids.dropLocked(id, e)
		seen = false
	}
	if seen {
		ids.mu.Unlock()
		if e.fingerprint != fp {
			writeJSONError(w, http.StatusConflict, "payment-identifier id already used for a different payment")
			return
		}
		select {
		case <-e.done:
		case <-r.Context().Done():
			return
		}
		if e.resp == nil {
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusServiceUnavailable, "the first request with this payment-identifier id did not finish; retry")
			return
		}
		e.resp.writeTo(w)
		return
	}
	ids.evictLocked(1, 0)
	e = &idEntry{fingerprint: fp, created: now, done: make(chan struct{})}
	ids.entries[id] = e
	ids.mu.Unlock()

	rec := &responseRecorder{ResponseWriter: w, max: ids.cfg.MaxBytes / 16}
	finished := false
	defer func() {
		if !finished { // serve panicked: let waiters go and the id be used again
			ids.finish(id, e, nil)
		}
	}()
	serve(rec, r)
	finished = true
	ids.finish(id, e, rec.response())
}

// finish records the first request's response: kept for resends when it was paid, otherwise
// handed to the resends already waiting and forgotten.
func (ids *identifiers) finish(id string, e *idEntry, resp *recordedResponse) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	e.resp = resp
	if resp != nil && resp.paid() && ids.entries[id] == e {
		ids.evictLocked(0, len(resp.body))
		e.kept, e.expires = true, ids.now().Add(ids.cfg.TTL)
		ids.bytes += len(resp.body)
	} else if ids.entries[id] == e {
		delete(ids.entries, id)
	}
	close(e.done)
}

// evictLocked makes room for entries more entries and body more bytes: it drops expired
// responses, then the oldest kept ones. Requests still in flight are never dropped.
func (ids *identifiers) evictLocked(entries, body int) {
	full := func() bool {
		return len(ids.entries)+entries > ids.cfg.MaxEntries || ids.bytes+body > ids.cfg.MaxBytes
	}
	if !full() {
		return
	}
	now := ids.now()
	var kept []string
	for id, e := range ids.entries {
		switch {
		case !e.kept:
		case now.After(e.expires):
			ids.dropLocked(id, e)
		default:
			kept = append(kept, id)
		}
	}
	slices.SortFunc(kept, func(a, b string) int { return ids.entries[a].created.Compare(ids.entries[b].created) })
	for _, id := range kept {
		if !full() {
			return
		}
		ids.dropLocked(id, ids.entries[id])
	}
}

func (ids *identifiers) dropLocked(id string, e *idEntry) {
	delete(ids.entries, id)
	if e.kept && e.resp != nil {
		ids.bytes -= len(e.resp.body)
	}
}

// paymentID returns the payload's payment-identifier id, "" when it carries none. valid is false
// when an id is given in a format the extension does not allow.
func paymentID(p *x402.PaymentPayload) (id string, valid bool) {
	raw, present := p.Extensions[ExtensionPaymentIdentifier]
	if !present {
		return "", true
	}
	var ext struct {
		Info struct {
			ID *string `json:"id"`
		} `json:"info"`
	}
	if json.Unmarshal(raw, &ext) != nil || ext.Info.ID == nil {
		return "", true
	}
	return *ext.Info.ID, paymentIDPattern.MatchString(*ext.Info.ID)
}

// recordedResponse is a response as it was sent.
type recordedResponse struct {
	status    int
	header    http.Header
	body      []byte
	truncated bool
}

// paid reports a response the buyer paid for: a success carrying a successful settlement.
func (r *recordedResponse) paid() bool {
	if r.truncated || r.status >= 400 {
		return false
	}
	s, err := x402.DecodeSettleResponse(r.header.Get(x402.HeaderPaymentResponse))
	return err == nil && s.Success
}

func (r *recordedResponse) writeTo(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range r.header {
		h[k] = append([]string(nil), vs...)
	}
	w.WriteHeader(r.status)
	w.Write(r.body)
}

// responseRecorder passes a response through while keeping a copy of it.
type responseRecorder struct {
	http.ResponseWriter
	max       int
	status    int
	header    http.Header
	body      []byte
	truncated bool
}

func (rr *responseRecorder) WriteHeader(status int) {
	if rr.status == 0 {
		rr.status, rr.header = status, rr.ResponseWriter.Header().Clone()
	}
	rr.ResponseWriter.WriteHeader(status)
}

func (rr *responseRecorder) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.WriteHeader(http.StatusOK)
	}
	if !rr.truncated {
		if len(rr.body)+len(b) > rr.max {
			rr.truncated, rr.body = true, nil
		} else {
			rr.body = append(rr.body, b...)
		}
	}
	return rr.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (SettleBefore routes) flush through the recorder.
func (rr *responseRecorder) Flush() {
	if rr.status == 0 {
		rr.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(rr.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (rr *responseRecorder) Unwrap() http.ResponseWriter { return rr.ResponseWriter }

func (rr *responseRecorder) response() *recordedResponse {
	if rr.status == 0 {
		return nil
	}
	return &recordedResponse{status: rr.status, header: rr.header, body: rr.body, truncated: rr.truncated}
}

// ExtensionBazaar is the key of the x402 bazaar (discovery) extension.
const ExtensionBazaar = "bazaar"

// bazaarDeclaration declares a route's input and output for the bazaar extension, the way the
// reference server's declareDiscoveryExtension does: info describes the call, schema is the JSON
// Schema of info, with the route's input schema as the query or body and its output schema as
// the output's example.
func bazaarDeclaration(route Route) json.RawMessage {
	method := strings.ToUpper(route.Method)
	if method == "" {
		method = http.MethodGet
	}
	in := bazaarInput{Type: "http", Method: method}
	props := bazaarInputSchema{
		Type:   bazaarConst{Type: "string", Const: "http"},
		Method: bazaarEnum{Type: "string", Enum: []string{method}},
	}
	if len(route.InputSchema) > 0 {
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodDelete:
			in.QueryParams = &struct{}{}
			props.QueryParams = route.InputSchema
		default:
			in.BodyType, in.Body = "json", &struct{}{}
			props.BodyType = &bazaarEnum{Type: "string", Enum: []string{"json"}}
			props.Body = route.InputSchema
		}
	}
	decl := bazaarDecl{Info: bazaarInfo{Input: in}}
	decl.Schema.Schema, decl.Schema.Type, decl.Schema.Required = "https://json-schema.org/draft/2020-12/schema", "object", []string{"input"}
	decl.Schema.Properties.Input = bazaarObject[bazaarInputSchema]{Type: "object", Properties: props, Required: []string{"type", "method"}}
	if len(route.OutputSchema) > 0 {
		mime := route.MimeType
		if mime == "" {
			mime = "application/json"
		}
		decl.Info.Output = &bazaarOutput{Type: mime}
		decl.Schema.Properties.Output = &bazaarObject[bazaarOutputSchema]{Type: "object",
			Properties: bazaarOutputSchema{Type: bazaarType{Type: "string"}, Example: route.OutputSchema}}
	}
	raw, _ := json.Marshal(decl) // plain structs and valid raw JSON always marshal
	return raw
}

type bazaarDecl struct {
	Info   bazaarInfo `json:"info"`
	Schema struct {
		Schema     string `json:"$schema"`
		Type       string `json:"type"`
		Properties struct {
			Input  bazaarObject[bazaarInputSchema]   `json:"input"`
			Output *bazaarObject[bazaarOutputSchema] `json:"output,omitempty"`
		} `json:"properties"`
		Required []string `json:"required"`
	} `json:"schema"`
}

type bazaarInfo struct {
	Input  bazaarInput   `json:"input"`
	Output *bazaarOutput `json:"output,omitempty"`
}

type bazaarInput struct {
	Type        string    `json:"type"`
	Method      string    `json:"method"`
	BodyType    string    `json:"bodyType,omitempty"`
	Body        *struct{} `json:"body,omitempty"`
	QueryParams *struct{} `json:"queryParams,omitempty"`
}

type bazaarOutput struct {
	Type string `json:"type"`
}

type bazaarObject[P any] struct {
	Type       string   `json:"type"`
	Properties P        `json:"properties"`
	Required   []string `json:"required,omitempty"`
}

type bazaarInputSchema struct {
	Type        bazaarConst     `json:"type"`
	Method      bazaarEnum      `json:"method"`
	BodyType    *bazaarEnum     `json:"bodyType,omitempty"`
	Body        json.RawMessage `json:"body,omitempty"`
	QueryParams json.RawMessage `json:"queryParams,omitempty"`
}

type bazaarOutputSchema struct {
	Type    bazaarType      `json:"type"`
	Example json.RawMessage `json:"example,omitempty"`
}

type bazaarType struct {
	Type string `json:"type"`
}

type bazaarConst struct {
	Type  string `json:"type"`
	Const string `json:"const"`
}

type bazaarEnum struct {
	Type string   `json:"type"`
	Enum []string `json:"enum"`
}
