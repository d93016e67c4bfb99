package facilitator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

// discEnv is a facilitator's HTTP API on a devnet, for the discovery catalog tests.
type discEnv struct {
	*quidtest.Env
	url string
	req x402.PaymentRequirements
}

func newDiscEnv(t *testing.T) *discEnv {
	t.Helper()
	env := quidtest.NewEnv(t, quidtest.Options{})
	srv := httptest.NewServer(env.Facilitator.Handler())
	t.Cleanup(srv.Close)
	return &discEnv{Env: env, url: srv.URL, req: env.Requirements(1000, env.Seller.Address)}
}

// discBazaar is a bazaar declaration for a GET route, as @x402/extensions writes one.
const discBazaar = `{"info":{"input":{"type":"http","queryParams":{"city":"Lisbon"},"method":"GET"},` +
	`"output":{"type":"json","example":{"sky":"clear"}}},` +
	`"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"properties":{"input":{"type":"object"}},"required":["input"]}}`

// verify posts a fresh payment for resource, declaring bazaar (when not empty), to /verify.
func (e *discEnv) verify(t *testing.T, resource x402.ResourceInfo, bazaar string) (*x402.VerifyResponse, http.Header) {
	t.Helper()
	auth := quidtest.Authorization(t, e.Buyer.Key, e.req)
	p := quidtest.Payload(t, e.Buyer.Key, e.Token.Domain(), auth, e.req)
	p.Resource = &resource
	if bazaar != "" {
		p.Extensions = x402.Object{facilitator.ExtensionBazaar: json.RawMessage(bazaar)}
	}
	return e.post(t, p)
}

func (e *discEnv) post(t *testing.T, p *x402.PaymentPayload) (*x402.VerifyResponse, http.Header) {
	t.Helper()
	body, err := x402.EncodeFacilitatorRequest(p, e.req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.url+"/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v x402.VerifyResponse
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return &v, resp.Header
}

func (e *discEnv) list(t *testing.T, query string) (int, facilitator.DiscoveryResponse) {
	t.Helper()
	resp, err := http.Get(e.url + "/discovery/resources" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var d facilitator.DiscoveryResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if d.Items == nil {
			t.Fatalf("items is null, want an array: %s", b)
		}
	}
	return resp.StatusCode, d
}

func discOutcome(t *testing.T, h http.Header) map[string]map[string]string {
	t.Helper()
	v := h.Get("EXTENSION-RESPONSES")
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("EXTENSION-RESPONSES is not base64: %v", err)
	}
	var o map[string]map[string]string
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("EXTENSION-RESPONSES: %v", err)
	}
	return o
}

func TestDiscoveryCatalogsVerifiedBazaarDeclarations(t *testing.T) {
	e := newDiscEnv(t)

	resp, err := http.Get(e.url + "/supported")
	if err != nil {
		t.Fatal(err)
	}
	var s x402.SupportedResponse
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if !slices.Contains(s.Extensions, facilitator.ExtensionBazaar) {
		t.Fatalf("/supported extensions %v, want bazaar", s.Extensions)
	}

	if _, d := e.list(t, ""); d.Pagination.Total != 0 || len(d.Items) != 0 || d.X402Version != 2 {
		t.Fatalf("empty catalog: %+v", d)
	}

	res := x402.ResourceInfo{URL: "https://api.example.test/weather?city=Lisbon", Description: "Weather", MimeType: "application/json",
		ServiceName: "Example Weather", Tags: []string{"weather", "Weather", "forecast"}, IconURL: "http://localhost/icon.png"}
	before := time.Now().Add(-time.Second)
	v, h := e.verify(t, res, discBazaar)
	if !v.IsValid {
		t.Fatalf("verify: %+v", v)
	}
	if o := discOutcome(t, h); o["bazaar"]["status"] != "success" {
		t.Fatalf("EXTENSION-RESPONSES %v, want bazaar success", o)
	}
	// A payment without the extension, and one that does not verify, are not cataloged.
	if v, h := e.verify(t, x402.ResourceInfo{URL: "https://api.example.test/other"}, ""); !v.IsValid || discOutcome(t, h) != nil {
		t.Fatalf("plain payment: %+v %v", v, h)
	}
	// Signed by someone other than the payer.
	bad := quidtest.Payload(t, e.Seller.Key, e.Token.Domain(), quidtest.Authorization(t, e.Buyer.Key, e.req), e.req)
	bad.Resource = &x402.ResourceInfo{URL: "https://api.example.test/unpaid"}
	bad.Extensions = x402.Object{facilitator.ExtensionBazaar: json.RawMessage(discBazaar)}
	if v, h := e.post(t, bad); v.IsValid || discOutcome(t, h) != nil {
		t.Fatalf("invalid payment: %+v %v", v, h)
	}

	status, d := e.list(t, "")
	if status != http.StatusOK || d.Pagination != (facilitator.DiscoveryPagination{Limit: 20, Offset: 0, Total: 1}) || len(d.Items) != 1 {
		t.Fatalf("catalog: %d %+v", status, d)
	}
	it := d.Items[0]
	if it.Resource != "https://api.example.test/weather" || it.Type != "http" || it.X402Version != 2 ||
		it.Description != "Weather" || it.MimeType != "application/json" || it.ServiceName != "Example Weather" {
		t.Fatalf("item %+v", it)
	}
	if !slices.Equal(it.Tags, []string{"weather", "forecast"}) || it.IconURL != "" {
		t.Fatalf("metadata not sanitized: tags %v, icon %q", it.Tags, it.IconURL)
	}
	if len(it.Accepts) != 1 || !x402.Match(x402.V2, e.req, it.Accepts[0]) {
		t.Fatalf("accepts %+v, want the verified requirements", it.Accepts)
	}
	if updated, err := time.Parse(time.RFC3339, it.LastUpdated); err != nil || updated.Before(before) {
		t.Fatalf("lastUpdated %q: %v", it.LastUpdated, err)
	}
	var got, want any
	json.Unmarshal(it.Extensions[facilitator.ExtensionBazaar], &got)
	json.Unmarshal([]byte(discBazaar), &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("extensions.bazaar %s", it.Extensions[facilitator.ExtensionBazaar])
	}

	// Paying the same route again updates its one entry.
	if v, _ := e.verify(t, x402.ResourceInfo{URL: "https://api.example.test/weather?city=Porto"}, discBazaar); !v.IsValid {
		t.Fatal(v)
	}
	if _, d := e.list(t, ""); d.Pagination.Total != 1 {
		t.Fatalf("same route twice: %+v", d)
	}
}

func TestDiscoveryRejectsMalformedDeclarations(t *testing.T) {
	e := newDiscEnv(t)
	for name, decl := range map[string]string{
		"not an object":   `"bazaar"`,
		"unknown type":    `{"info":{"input":{"type":"ftp"}},"schema":{}}`,
		"unknown method":  `{"info":{"input":{"type":"http","method":"TRACE"}},"schema":{}}`,
		"body, no type":   `{"info":{"input":{"type":"http","method":"POST","body":{}}},"schema":{}}`,
		"mcp, no tool":    `{"info":{"input":{"type":"mcp","inputSchema":{}}},"schema":{}}`,
		"no schema":       `{"info":{"input":{"type":"http","method":"GET"}}}`,
		"external $ref":   `{"info":{"input":{"type":"http","method":"GET"}},"schema":{"$ref":"https://evil.test/s.json"}}`,
		"nested $id":      `{"info":{"input":{"type":"http","method":"GET"}},"schema":{"properties":{"a":{"$id":"file:///etc/passwd"}}}}`,
		"headers not obj": `{"info":{"input":{"type":"http","method":"GET","headers":"x"}},"schema":{}}`,
		"too large":       `{"info":{"input":{"type":"http","method":"GET"},"output":{"type":"text","example":"` + strings.Repeat("x", 9000) + `"}},"schema":{}}`,
	} {
		v, h := e.verify(t, x402.ResourceInfo{URL: "https://api.example.test/" + name}, decl)
		if !v.IsValid {
			t.Fatalf("%s: the payment itself must still verify: %+v", name, v)
		}
		if o := discOutcome(t, h); o["bazaar"]["status"] != "rejected" || o["bazaar"]["rejectedReason"] == "" {
			t.Errorf("%s: EXTENSION-RESPONSES %v, want rejected with a reason", name, o)
		}
	}
	if v, h := e.verify(t, x402.ResourceInfo{URL: "ftp://api.example.test/x"}, discBazaar); !v.IsValid || discOutcome(t, h)["bazaar"]["status"] != "rejected" {
		t.Errorf("non-http resource URL was not rejected: %v", discOutcome(t, h))
	}
	if _, d := e.list(t, ""); d.Pagination.Total != 0 {
		t.Fatalf("malformed declarations were cataloged: %+v", d.Items)
	}
}

func TestDiscoveryKeys(t *testing.T) {
	e := newDiscEnv(t)
	withTemplate := func(tmpl string) string {
		var d map[string]any
		json.Unmarshal([]byte(discBazaar), &d)
		d["routeTemplate"] = tmpl
		b, _ := json.Marshal(d)
		return string(b)
	}
	mcp := func(tool string) string {
		return `{"info":{"input":{"type":"mcp","toolName":"` + tool + `","inputSchema":{"type":"object"}}},"schema":{"type":"object"}}`
	}
	for _, c := range []struct{ url, decl string }{
		{"https://api.example.test/users/1", withTemplate("/users/:id")},
		{"https://api.example.test/users/2", withTemplate("/users/:id")},
		{"https://api.example.test/files/a", withTemplate("/files/%2e%2e/admin")}, // traversal: concrete path
		{"https://api.example.test/mcp", mcp("forecast")},
		{"https://api.example.test/mcp", mcp("history")},
		{"https://api.example.test/mcp", mcp("forecast")},
	} {
		if v, _ := e.verify(t, x402.ResourceInfo{URL: c.url}, c.decl); !v.IsValid {
			t.Fatal(v)
		}
	}
	_, d := e.list(t, "")
	var got []string
	for _, it := range d.Items {
		got = append(got, it.Type+" "+it.Resource)
	}
	want := []string{"http https://api.example.test/users/:id", "http https://api.example.test/files/a",
		"mcp https://api.example.test/mcp", "mcp https://api.example.test/mcp"}
	if !slices.Equal(got, want) {
		t.Fatalf("catalog keys\n got %q\nwant %q", got, want)
	}
	if _, d := e.list(t, "?type=mcp"); d.Pagination.Total != 2 {
		t.Fatalf("type=mcp: %+v", d.Pagination)
	}
}

func TestDiscoveryPaginationAndFilters(t *testing.T) {
	e := newDiscEnv(t)
	const n = 25
	for i := range n {
		if v, _ := e.verify(t, x402.ResourceInfo{URL: fmt.Sprintf("https://api.example.test/r%02d", i)}, discBazaar); !v.IsValid {
			t.Fatal(v)
		}
	}
	resource := func(d facilitator.DiscoveryResponse, i int) string { return d.Items[i].Resource }

	_, d := e.list(t, "")
	if len(d.Items) != facilitator.DefaultDiscoveryLimit || d.Pagination != (facilitator.DiscoveryPagination{Limit: 20, Offset: 0, Total: n}) ||
		resource(d, 0) != "https://api.example.test/r00" || resource(d, 19) != "https://api.example.test/r19" {
		t.Fatalf("first page: %+v", d.Pagination)
	}
	_, d = e.list(t, "?offset=20&limit=10")
	if len(d.Items) != 5 || d.Pagination != (facilitator.DiscoveryPagination{Limit: 10, Offset: 20, Total: n}) || resource(d, 0) != "https://api.example.test/r20" {
		t.Fatalf("last page: %+v", d.Pagination)
	}
	if _, d = e.list(t, "?offset=30"); len(d.Items) != 0 || d.Pagination.Total != n {
		t.Fatalf("past the end: %+v", d)
	}
	if _, d = e.list(t, "?limit=100"); len(d.Items) != n {
		t.Fatalf("limit=100: %d items", len(d.Items))
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?offset=-1", "?offset=1.5"} {
		if status, _ := e.list(t, q); status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, status)
		}
	}
	for q, total := range map[string]int{
		"?payTo=" + e.Seller.Address.Hex():            n,
		"?payTo=" + e.Buyer.Address.Hex():             0,
		"?network=" + string(e.req.Network):           n,
		"?network=eip155:1":                           0,
		"?scheme=exact&extensions=bazaar":             n,
		"?extensions=payment-identifier":              0,
		"?type=http&network=" + string(e.req.Network): n,
	} {
		if _, d := e.list(t, q); d.Pagination.Total != total {
			t.Errorf("%s: total %d, want %d", q, d.Pagination.Total, total)
		}
	}
}
