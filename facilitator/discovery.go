package facilitator

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quidpay/quid/x402"
)

// ExtensionBazaar is the key of the x402 discovery extension. A seller declares its route in
// PaymentRequired.extensions["bazaar"], buyers echo the declaration in their payment, and a
// facilitator that verified the payment catalogs the route for GET /discovery/resources.
const ExtensionBazaar = "bazaar"

// Discovery listing limits: the page size when the query gives none, and the largest allowed.
const (
	DefaultDiscoveryLimit = 20
	MaxDiscoveryLimit     = 100
)

// Catalog bounds. Entries come from payments anyone with a funded key can sign, so without bounds
// the catalog would be memory an attacker controls: past maxCatalogEntries the entry updated
// longest ago is dropped, and declarations over maxBazaarBytes are refused (real ones are under
// 1 KiB), which keeps the whole catalog within tens of megabytes.
const (
	maxCatalogEntries = 4096
	maxBazaarBytes    = 8 << 10
)

// maxCatalogAccepts bounds the payment options kept for one resource.
const maxCatalogAccepts = 8

// DiscoveryResource is one entry of the discovery catalog, as GET /discovery/resources lists it.
// LastUpdated is RFC 3339, the string the TypeScript client's type declares (the specification's
// prose has a number).
type DiscoveryResource struct {
	Resource    string                     `json:"resource"`
	Type        string                     `json:"type"`
	X402Version int                        `json:"x402Version"`
	Accepts     []x402.PaymentRequirements `json:"accepts"`
	LastUpdated string                     `json:"lastUpdated"`
	Description string                     `json:"description,omitempty"`
	MimeType    string                     `json:"mimeType,omitempty"`
	ServiceName string                     `json:"serviceName,omitempty"`
	Tags        []string                   `json:"tags,omitempty"`
	IconURL     string                     `json:"iconUrl,omitempty"`
	Extensions  x402.Object                `json:"extensions,omitempty"`
}

// DiscoveryPagination describes the page a listing returned.
type DiscoveryPagination struct {
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	Total  int `json:"total"`
}

// DiscoveryResponse is the body of GET /discovery/resources.
type DiscoveryResponse struct {
	X402Version int                 `json:"x402Version"`
	Items       []DiscoveryResource `json:"items"`
	Pagination  DiscoveryPagination `json:"pagination"`
}

// catalog holds what the facilitator's HTTP API has learnt from verified payments. It lives with
// the Handler: in-process users of a Facilitator do not catalog.
type catalog struct {
	now func() time.Time

	mu      sync.Mutex
	seq     uint64
	entries map[string]*catalogEntry
}

type catalogEntry struct {
	seq     uint64 // order of first cataloging, which listings follow
	updated time.Time
	res     DiscoveryResource
}

func newCatalog(now func() time.Time) *catalog {
	return &catalog{now: now, entries: map[string]*catalogEntry{}}
}

// bazaarOutcome is the facilitator's note on a bazaar declaration, for the EXTENSION-RESPONSES
// side channel.
type bazaarOutcome struct {
	Status         string `json:"status"`
	RejectedReason string `json:"rejectedReason,omitempty"`
}

// bazaarDeclaration is the bazaar extension as it travels.
type bazaarDeclaration struct {
	Info struct {
		Input  json.RawMessage `json:"input"`
		Output json.RawMessage `json:"output,omitempty"`
	} `json:"info"`
	Schema        json.RawMessage `json:"schema"`
	RouteTemplate string          `json:"routeTemplate,omitempty"`
}

// record catalogs the resource a verified v2 payment declared with the bazaar extension. It
// returns nil when the payment declared none.
func (c *catalog) record(p *x402.PaymentPayload, req x402.PaymentRequirements) *bazaarOutcome {
	raw, ok := p.Extensions[ExtensionBazaar]
	if !ok || p.X402Version != x402.V2 {
		return nil
	}
	res, key, err := discoveryResource(p, req, raw)
	if err != nil {
		return &bazaarOutcome{Status: "rejected", RejectedReason: err.Error()}
	}
	now := c.now()
	res.LastUpdated = now.UTC().Format(time.RFC3339)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		res.Accepts = mergeAccepts(e.res.Accepts, req)
		e.res, e.updated = res, now
		return &bazaarOutcome{Status: "success"}
	}
	if len(c.entries) >= maxCatalogEntries {
		c.evictLocked()
	}
	c.seq++
	c.entries[key] = &catalogEntry{seq: c.seq, updated: now, res: res}
	return &bazaarOutcome{Status: "success"}
}

func (c *catalog) evictLocked() {
	var oldest string
	var at time.Time
	for k, e := range c.entries {
		if oldest == "" || e.updated.Before(at) {
			oldest, at = k, e.updated
		}
	}
	delete(c.entries, oldest)
}

// mergeAccepts adds req to the options known for a resource, replacing the option with the same
// scheme, network, asset and recipient.
func mergeAccepts(known []x402.PaymentRequirements, req x402.PaymentRequirements) []x402.PaymentRequirements {
	out := make([]x402.PaymentRequirements, 0, len(known)+1)
	out = append(out, req)
	for _, k := range known {
		if k.Scheme == req.Scheme && k.Network == req.Network && k.Asset == req.Asset && k.PayTo == req.PayTo {
			continue
		}
		if len(out) < maxCatalogAccepts {
			out = append(out, k)
		}
	}
	return out
}

// discoveryResource validates a bazaar declaration and builds its catalog entry and key.
func discoveryResource(p *x402.PaymentPayload, req x402.PaymentRequirements, raw json.RawMessage) (DiscoveryResource, string, error) {
	var res DiscoveryResource
	var d bazaarDeclaration
	if len(raw) > maxBazaarBytes {
		return res, "", errors.New("bazaar extension larger than " + strconv.Itoa(maxBazaarBytes) + " bytes")
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return res, "", errors.New("bazaar extension is not an object with info and schema")
	}
	typ, tool, err := validateDiscoveryInput(d.Info.Input)
	if err != nil {
		return res, "", err
	}
	if err := validateDiscoverySchema(d.Schema); err != nil {
		return res, "", err
	}
	if p.Resource == nil {
		return res, "", errors.New("payment names no resource")
	}
	u, err := url.Parse(p.Resource.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return res, "", errors.New("resource.url is not an absolute http(s) URL")
	}
	// Requests for one route are one entry: the template when the seller gave a valid one, else
	// the concrete path; never the query, which varies per request.
	path := u.EscapedPath()
	if isValidRouteTemplate(d.RouteTemplate) {
		path = d.RouteTemplate
	}
	res = DiscoveryResource{
		Resource:    u.Scheme + "://" + u.Host + path,
		Type:        typ,
		X402Version: x402.V2,
		Accepts:     []x402.PaymentRequirements{req},
		Description: p.Resource.Description,
		MimeType:    p.Resource.MimeType,
		Extensions:  x402.Object{ExtensionBazaar: raw},
	}
	if isValidCatalogLabel(p.Resource.ServiceName) {
		res.ServiceName = p.Resource.ServiceName
	}
	res.Tags = sanitizeTags(p.Resource.Tags)
	if isValidIconURL(p.Resource.IconURL) {
		res.IconURL = p.Resource.IconURL
	}
	key := typ + " " + res.Resource
	if tool != "" {
		key += " " + tool // MCP multiplexes tools over one URL
	}
	return res, key, nil
}

// validateDiscoveryInput checks info.input against the shapes the bazaar specification defines
// (HTTP query methods, HTTP body methods, MCP tools) and returns its type and MCP tool name.
// quid checks these shapes itself rather than evaluating the declaration's JSON Schema, which
// would run a schema supplied by whoever signed the payment.
func validateDiscoveryInput(raw json.RawMessage) (typ, tool string, err error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return "", "", errors.New("info.input is not an object")
	}
	str := func(k string) (string, bool) {
		var s string
		v, ok := in[k]
		if !ok || json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	}
	isObject := func(k string) bool {
		var o map[string]json.RawMessage
		v, ok := in[k]
		return ok && json.Unmarshal(v, &o) == nil && o != nil
	}
	optionalObject := func(k string) bool { _, ok := in[k]; return !ok || isObject(k) }
	typ, _ = str("type")
	switch typ {
	case "http":
		method, _ := str("method")
		switch method {
		case "GET", "HEAD", "DELETE":
		case "POST", "PUT", "PATCH":
			bodyType, _ := str("bodyType")
			if bodyType != "json" && bodyType != "form-data" && bodyType != "text" {
				return "", "", errors.New(`info.input.bodyType must be "json", "form-data" or "text"`)
			}
			if _, ok := in["body"]; !ok {
				return "", "", errors.New("info.input.body is required for " + method)
			}
		default:
			return "", "", errors.New("info.input.method is not an HTTP method the bazaar specification lists")
		}
		if !optionalObject("queryParams") || !optionalObject("headers") || !optionalObject("pathParams") {
			return "", "", errors.New("info.input.queryParams, headers and pathParams must be objects")
		}
		return typ, "", nil
	case "mcp":
		tool, ok := str("toolName")
		if !ok || tool == "" {
			return "", "", errors.New("info.input.toolName is required for MCP tools")
		}
		if !isObject("inputSchema") {
			return "", "", errors.New("info.input.inputSchema is required for MCP tools")
		}
		if t, ok := str("transport"); ok && t != "streamable-http" && t != "sse" {
			return "", "", errors.New(`info.input.transport must be "streamable-http" or "sse"`)
		}
		return typ, tool, nil
	}
	return "", "", errors.New(`info.input.type must be "http" or "mcp"`)
}

// validateDiscoverySchema requires the declaration's schema to be a JSON object whose $ref and
// $id are all same-document fragments, as the specification demands of untrusted schemas.
func validateDiscoverySchema(raw json.RawMessage) error {
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil || schema == nil {
		return errors.New("schema is not a JSON object")
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "$ref" || k == "$id" {
					if s, ok := child.(string); !ok || !strings.HasPrefix(s, "#") {
						return errors.New("schema " + k + " must be a same-document fragment")
					}
				}
				if err := walk(child); err != nil {
					return err
				}
			}
		case []any:
			for _, child := range v {
				if err := walk(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(schema)
}

var routeTemplatePattern = regexp.MustCompile(`^/[a-zA-Z0-9_/:.\-~%]+$`)

// isValidRouteTemplate applies the bazaar specification's routeTemplate rules, checking for
// traversal and schemes after percent-decoding.
func isValidRouteTemplate(t string) bool {
	if t == "" || !routeTemplatePattern.MatchString(t) {
		return false
	}
	decoded, err := url.PathUnescape(t)
	if err != nil {
		return false
	}
	return !strings.Contains(decoded, "..") && !strings.Contains(decoded, "://")
}

// isValidCatalogLabel applies the specification's rule for serviceName and each tag: 1 to 32
// characters of printable ASCII.
func isValidCatalogLabel(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// sanitizeTags keeps the first five valid tags, without case-insensitive duplicates.
func sanitizeTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if len(out) == 5 {
			break
		}
		if isValidCatalogLabel(t) && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, t) }) {
			out = append(out, t)
		}
	}
	return out
}

// isValidIconURL applies the specification's iconUrl rules. Hosts that are not plain ASCII are
// refused rather than IDN-normalized: a refused icon only drops the field.
func isValidIconURL(s string) bool {
	if s == "" || len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" {
		return false
	}
	host, err := url.PathUnescape(u.Hostname())
	if err != nil || host == "" {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for i := 0; i < len(host); i++ {
		if host[i] > 0x7e {
			return false
		}
	}
	if net.ParseIP(host) != nil || strings.HasPrefix(host, "0x") || strings.Trim(host, "0123456789") == "" {
		return false
	}
	switch host {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return false
	}
	return true
}

// serveResources answers GET /discovery/resources?type=&payTo=&scheme=&network=&extensions=
// &limit=&offset=.
func (c *catalog) serveResources(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q, "limit", DefaultDiscoveryLimit)
	if err != nil || limit < 1 || limit > MaxDiscoveryLimit {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit must be an integer from 1 to " + strconv.Itoa(MaxDiscoveryLimit)})
		return
	}
	offset, err := queryInt(q, "offset", 0)
	if err != nil || offset < 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "offset must be a non-negative integer"})
		return
	}
	items := c.list(q)
	resp := DiscoveryResponse{X402Version: x402.V2, Items: []DiscoveryResource{},
		Pagination: DiscoveryPagination{Limit: limit, Offset: offset, Total: len(items)}}
	if offset < len(items) {
		resp.Items = items[offset:min(offset+limit, len(items))]
	}
	writeJSON(w, http.StatusOK, resp)
}

// list returns the catalog entries matching the query's filters, in cataloging order.
func (c *catalog) list(q url.Values) []DiscoveryResource {
	typ, payTo, scheme, network, ext := q.Get("type"), q.Get("payTo"), q.Get("scheme"), q.Get("network"), q.Get("extensions")
	c.mu.Lock()
	entries := make([]*catalogEntry, 0, len(c.entries))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	slices.SortFunc(entries, func(a, b *catalogEntry) int { return cmp.Compare(a.seq, b.seq) })

	out := make([]DiscoveryResource, 0, len(entries))
	for _, e := range entries {
		res := e.res
		if typ != "" && res.Type != typ {
			continue
		}
		if ext != "" {
			if _, ok := res.Extensions[ext]; !ok {
				continue
			}
		}
		if (payTo != "" || scheme != "" || network != "") && !slices.ContainsFunc(res.Accepts, func(a x402.PaymentRequirements) bool {
			return (payTo == "" || strings.EqualFold(a.PayTo, payTo)) && (scheme == "" || a.Scheme == scheme) &&
				(network == "" || string(a.Network) == network)
		}) {
			continue
		}
		out = append(out, res)
	}
	return out
}

func queryInt(q url.Values, key string, def int) (int, error) {
	s := q.Get(key)
	if s == "" {
		return def, nil
	}
	return strconv.Atoi(s)
}

// afterVerify catalogs what a payment that verified declared with the bazaar extension, and tells
// the seller's server the outcome in the EXTENSION-RESPONSES side-channel header (which servers
// never forward to buyers).
func (c *catalog) afterVerify(w http.ResponseWriter, p *x402.PaymentPayload, req x402.PaymentRequirements, resp *x402.VerifyResponse) {
	if !resp.IsValid {
		return
	}
	if o := c.record(p, req); o != nil {
		b, _ := x402.Marshal(map[string]*bazaarOutcome{ExtensionBazaar: o})
		w.Header().Set("EXTENSION-RESPONSES", base64.StdEncoding.EncodeToString(b))
	}
}
