package x402_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/quidpay/quid/x402"
)

// body builds a facilitator request from raw members; a nil member is left out.
func body(t testing.TB, version any, payload, requirements any) []byte {
	m := map[string]any{}
	if version != nil {
		m["x402Version"] = version
	}
	if payload != nil {
		m["paymentPayload"] = payload
	}
	if requirements != nil {
		m["paymentRequirements"] = requirements
	}
	return mustMarshal(t, m)
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestDecodeFacilitatorRequestV2(t *testing.T) {
	t.Parallel()
	// The body @x402/express 2.27 sends (§2.1): the payload as decoded, the server's requirements.
	in := `{"x402Version":2,"paymentPayload":` + capturedPaymentPayloadJSON +
		`,"paymentRequirements":` + string(mustMarshal(t, devRequirements(300))) + `}`
	p, r, err := x402.DecodeFacilitatorRequest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, capturedPaymentPayload(t)) {
		t.Fatalf("payload\n got %+v\nwant %+v", p, capturedPaymentPayload(t))
	}
	if !reflect.DeepEqual(r, devRequirements(300)) {
		t.Fatalf("requirements\n got %+v\nwant %+v", r, devRequirements(300))
	}
	// The requirements are the server's (maxTimeoutSeconds 300), not the buyer's accepted (60).
	if r.MaxTimeoutSeconds != 300 || p.Accepted.MaxTimeoutSeconds != 60 {
		t.Fatal("requirements and accepted were mixed up")
	}
}

func TestDecodeFacilitatorRequestV1(t *testing.T) {
	t.Parallel()
	in := body(t, 1, v1Payload(t), v1Requirements())
	p, r, err := x402.DecodeFacilitatorRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	wantP := &x402.PaymentPayload{
		X402Version: x402.V1,
		Resource: &x402.ResourceInfo{URL: "https://api.example.com/premium-data",
			Description: "Access to premium market data", MimeType: "application/json"},
		Accepted: &x402.PaymentRequirements{Scheme: "exact", Network: "eip155:84532"},
		Payload:  v1Payload(t).Payload,
	}
	if !reflect.DeepEqual(p, wantP) {
		t.Fatalf("payload\n got %+v\nwant %+v", p, wantP)
	}
	wantR := x402.PaymentRequirements{Scheme: "exact", Network: "eip155:84532", Amount: "10000",
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60, Extra: v1Requirements().Extra}
	if !reflect.DeepEqual(r, wantR) {
		t.Fatalf("requirements\n got %+v\nwant %+v", r, wantR)
	}
	if !x402.Match(p.X402Version, r, *p.Accepted) {
		t.Fatal("decoded v1 payload does not match its own requirements")
	}
}

func TestDecodeFacilitatorRequestErrors(t *testing.T) {
	t.Parallel()
	v2p := raw(capturedPaymentPayloadJSON)
	v2r := devRequirements(300)
	v1p := v1Payload(t)
	v1r := v1Requirements()
	v2pWith := func(f func(map[string]any)) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(v2p, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		return m
	}
	v1rWith := func(f func(*x402.V1Requirements)) x402.V1Requirements {
		r := v1Requirements()
		f(&r)
		return r
	}
	v1pWith := func(f func(*x402.V1PaymentPayload)) x402.V1PaymentPayload {
		p := v1Payload(t)
		f(&p)
		return p
	}
	tests := []struct {
		name   string
		in     []byte
		reason x402.Reason
	}{
		{"too large", append(body(t, 2, v2p, v2r), make([]byte, x402.MaxRequestBytes)...), x402.ReasonInvalidPayload},
		{"empty", nil, x402.ReasonInvalidPayload},
		{"not JSON", []byte("x402Version=2"), x402.ReasonInvalidPayload},
		{"truncated JSON", body(t, 2, v2p, v2r)[:100], x402.ReasonInvalidPayload},
		{"JSON array", []byte("[]"), x402.ReasonInvalidPayload},
		{"JSON null", []byte("null"), x402.ReasonInvalidPayload},
		{"empty object", []byte("{}"), x402.ReasonInvalidPayload},
		{"paymentPayload missing", body(t, 2, nil, v2r), x402.ReasonInvalidPayload},
		{"paymentPayload null", []byte(`{"x402Version":2,"paymentPayload":null,"paymentRequirements":{}}`), x402.ReasonInvalidPayload},
		{"paymentPayload a string", body(t, 2, "eyJ4NDAyVmVyc2lvbiI6Mn0=", v2r), x402.ReasonInvalidPayload},
		{"paymentPayload an array", body(t, 2, []int{2}, v2r), x402.ReasonInvalidPayload},
		{"payload version missing", body(t, 2, v2pWith(func(m map[string]any) { delete(m, "x402Version") }), v2r), x402.ReasonInvalidVersion},
		{"payload version 3", body(t, 3, v2pWith(func(m map[string]any) { m["x402Version"] = 3 }), v2r), x402.ReasonInvalidVersion},
		{"payload version a string", body(t, 2, v2pWith(func(m map[string]any) { m["x402Version"] = "2" }), v2r), x402.ReasonInvalidPayload},
		{"v2: accepted null", body(t, 2, v2pWith(func(m map[string]any) { m["accepted"] = nil }), v2r), x402.ReasonInvalidPayload},
		{"v2: accepted missing", body(t, 2, v2pWith(func(m map[string]any) { delete(m, "accepted") }), v2r), x402.ReasonInvalidPayload},
		{"v2: accepted malformed", body(t, 2, v2pWith(func(m map[string]any) { m["accepted"] = []string{} }), v2r), x402.ReasonInvalidPayload},
		{"v2: payload missing", body(t, 2, v2pWith(func(m map[string]any) { delete(m, "payload") }), v2r), x402.ReasonInvalidPayload},
		{"v2: payload null", body(t, 2, v2pWith(func(m map[string]any) { m["payload"] = nil }), v2r), x402.ReasonInvalidPayload},
		{"v2: requirements missing", body(t, 2, v2p, nil), x402.ReasonInvalidPaymentRequirements},
		{"v2: requirements null", []byte(`{"x402Version":2,"paymentPayload":` + capturedPaymentPayloadJSON + `,"paymentRequirements":null}`), x402.ReasonInvalidPaymentRequirements},
		{"v2: requirements an array", body(t, 2, v2p, []any{v2r}), x402.ReasonInvalidPaymentRequirements},
		{"v2: requirements with string timeout", body(t, 2, v2p, map[string]any{"scheme": "exact", "maxTimeoutSeconds": "300"}), x402.ReasonInvalidPaymentRequirements},
		{"v1: payload malformed", body(t, 1, map[string]any{"x402Version": 1, "scheme": 5}, v1r), x402.ReasonInvalidPayload},
		{"v1: payload network unknown", body(t, 1, v1pWith(func(p *x402.V1PaymentPayload) { p.Network = "base-mainnet" }), v1r), x402.ReasonInvalidNetwork},
		{"v1: payload missing", body(t, 1, v1pWith(func(p *x402.V1PaymentPayload) { p.Payload = nil }), v1r), x402.ReasonInvalidPayload},
		{"v1: requirements missing", body(t, 1, v1p, nil), x402.ReasonInvalidPaymentRequirements},
		{"v1: requirements null", []byte(`{"x402Version":1,"paymentPayload":` + string(mustMarshal(t, v1p)) + `,"paymentRequirements":null}`), x402.ReasonInvalidPaymentRequirements},
		{"v1: requirements malformed", body(t, 1, v1p, map[string]any{"maxTimeoutSeconds": 1.5}), x402.ReasonInvalidPaymentRequirements},
		{"v1: requirements network unknown", body(t, 1, v1p, v1rWith(func(r *x402.V1Requirements) { r.Network = "eip155:84532" })), x402.ReasonInvalidNetwork},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, _, err := x402.DecodeFacilitatorRequest(tc.in)
			wantMalformed(t, err, tc.reason)
			if p != nil {
				t.Fatalf("payload %+v returned with an error", p)
			}
		})
	}
}

func TestDecodeFacilitatorRequestSizeBoundary(t *testing.T) {
	t.Parallel()
	b := body(t, 2, raw(capturedPaymentPayloadJSON), devRequirements(300))
	pad := x402.MaxRequestBytes - len(b)
	atLimit := append([]byte(strings.Repeat(" ", pad)), b...)
	if _, _, err := x402.DecodeFacilitatorRequest(atLimit); err != nil {
		t.Fatalf("request of exactly MaxRequestBytes refused: %v", err)
	}
	_, _, err := x402.DecodeFacilitatorRequest(append([]byte(" "), atLimit...))
	wantMalformed(t, err, x402.ReasonInvalidPayload)
}

func TestDecodeFacilitatorRequestIgnoresTopLevelVersion(t *testing.T) {
	t.Parallel()
	// As the reference facilitators do, the version is the payload's own.
	p, _, err := x402.DecodeFacilitatorRequest(body(t, 1, raw(capturedPaymentPayloadJSON), devRequirements(300)))
	if err != nil || p.X402Version != 2 {
		t.Fatalf("DecodeFacilitatorRequest = %+v, %v", p, err)
	}
}

func TestFacilitatorRequestRoundTrip(t *testing.T) {
	t.Parallel()
	v1p, err := x402.DecodeXPayment(b64(string(mustMarshal(t, v1Payload(t)))))
	if err != nil {
		t.Fatal(err)
	}
	v1WithResource := *v1p
	v1WithResource.Resource = &x402.ResourceInfo{URL: "https://api.example.com/premium-data",
		Description: "Access to premium market data", MimeType: "application/json"}
	v1Req, err := v1Requirements().ToV2()
	if err != nil {
		t.Fatal(err)
	}
	withExt := capturedPaymentPayload(t)
	withExt.Extensions = x402.Object{"bazaar": raw(`{"info":{"input":{"type":"http","method":"GET"}}}`)}

	tests := []struct {
		name      string
		p         *x402.PaymentPayload
		r         x402.PaymentRequirements
		wantShape []string
	}{
		{"v2", capturedPaymentPayload(t), devRequirements(300),
			[]string{`{"x402Version":2,"paymentPayload":{"x402Version":2,"payload":{"authorization":`, `"paymentRequirements":{"scheme":"exact","network":"eip155:31337","amount":"1000"`}},
		{"v2 with extensions", withExt, devRequirements(300), []string{`"extensions":{"bazaar":`}},
		{"v1", &v1WithResource, v1Req,
			[]string{`{"x402Version":1,"paymentPayload":{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{`,
				`"paymentRequirements":{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000","resource":"https://api.example.com/premium-data","description":"Access to premium market data","mimeType":"application/json","outputSchema":{},`}},
		{"v1 without resource", v1p, v1Req, []string{`"resource":"","description":"","mimeType":""`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := x402.EncodeFacilitatorRequest(tc.p, tc.r)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.wantShape {
				if !strings.Contains(string(b), s) {
					t.Fatalf("request %s\nlacks %s", b, s)
				}
			}
			p, r, err := x402.DecodeFacilitatorRequest(b)
			if err != nil {
				t.Fatalf("decode of %s: %v", b, err)
			}
			if !reflect.DeepEqual(p, tc.p) {
				t.Fatalf("payload\n got %+v\nwant %+v", p, tc.p)
			}
			if !reflect.DeepEqual(r, tc.r) {
				t.Fatalf("requirements\n got %+v\nwant %+v", r, tc.r)
			}
		})
	}
}

func TestEncodeFacilitatorRequestErrors(t *testing.T) {
	t.Parallel()
	v1p, err := x402.DecodeXPayment(b64(string(mustMarshal(t, v1Payload(t)))))
	if err != nil {
		t.Fatal(err)
	}
	devnet := devRequirements(60) // eip155:31337 has no v1 name
	base := devRequirements(60)
	base.Network = "eip155:84532"
	noAccepted := *v1p
	noAccepted.Accepted = nil
	localAccepted := *v1p
	localAccepted.Accepted = &devnet
	tests := []struct {
		name   string
		p      *x402.PaymentPayload
		r      x402.PaymentRequirements
		reason x402.Reason
	}{
		{"v1 requirements without v1 name", v1p, devnet, x402.ReasonInvalidNetwork},
		{"v1 payload without accepted", &noAccepted, base, x402.ReasonInvalidPayload},
		{"v1 payload network without v1 name", &localAccepted, base, x402.ReasonInvalidNetwork},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b []byte
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("EncodeFacilitatorRequest panicked: %v", r)
					}
				}()
				b, err = x402.EncodeFacilitatorRequest(tc.p, tc.r)
			}()
			if b != nil {
				t.Fatalf("EncodeFacilitatorRequest wrote %s", b)
			}
			wantMalformed(t, err, tc.reason)
		})
	}
}
