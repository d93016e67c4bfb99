package x402_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/quidpay/quid/x402"
)

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	withExt := capturedPaymentRequired()
	withExt.Extensions = x402.Object{"bazaar": json.RawMessage(`{"info":{"input":{"type":"http","method":"GET"}},"schema":{}}`)}
	withExt.Resource.Tags = []string{"weather", "<b>&"}
	payloadExt := capturedPaymentPayload(t)
	payloadExt.Extensions = x402.Object{"payment-identifier": json.RawMessage(`{"info":{"required":true,"id":"req_0123456789abcdef"}}`)}
	fail := settleFailure()
	fail.ErrorMessage = "transferWithAuthorization reverted: <nonce used> & more"

	tests := []struct {
		name   string
		in     any
		decode func(string) (any, error)
	}{
		{"PaymentRequired", capturedPaymentRequired(), func(s string) (any, error) { return x402.DecodePaymentRequired(s) }},
		{"PaymentRequired with extensions", withExt, func(s string) (any, error) { return x402.DecodePaymentRequired(s) }},
		{"PaymentPayload", capturedPaymentPayload(t), func(s string) (any, error) { return x402.DecodePaymentSignature(s) }},
		{"PaymentPayload with extensions", payloadExt, func(s string) (any, error) { return x402.DecodePaymentSignature(s) }},
		{"SettleResponse success", ptr(settleSuccess()), func(s string) (any, error) { return x402.DecodeSettleResponse(s) }},
		{"SettleResponse failure", &fail, func(s string) (any, error) { return x402.DecodeSettleResponse(s) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := x402.EncodeHeader(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := base64.StdEncoding.Strict().DecodeString(h); err != nil {
				t.Fatalf("header is not padded standard base64: %v", err)
			}
			got, err := tc.decode(h)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, tc.in)
			}
			// Surrounding white space, as some proxies leave it, is tolerated.
			if again, err := tc.decode("  " + h + "\t"); err != nil || !reflect.DeepEqual(again, tc.in) {
				t.Fatalf("decode with surrounding spaces: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecodeXPayment(t *testing.T) {
	t.Parallel()
	p := v1Payload(t)
	h, err := x402.EncodeHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x402.DecodeXPayment(h)
	if err != nil {
		t.Fatal(err)
	}
	want := &x402.PaymentPayload{
		X402Version: x402.V1,
		Accepted:    &x402.PaymentRequirements{Scheme: "exact", Network: "eip155:84532"},
		Payload:     p.Payload,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeXPayment\n got %+v\nwant %+v", got, want)
	}
	ex, err := got.ExactEVM()
	if err != nil || ex != devExactPayload() {
		t.Fatalf("ExactEVM = %+v, %v", ex, err)
	}
}

// headerWith returns a PAYMENT-REQUIRED header whose standard base64 contains every byte of
// need, by padding the resource description; it lets tests build alphabet and padding cases.
func headerWith(t *testing.T, need string, padded bool) string {
	t.Helper()
	for i := range 64 {
		pr := capturedPaymentRequired()
		pr.Resource.Description = strings.Repeat("x", i) + "???>>>"
		h, err := x402.EncodeHeader(pr)
		if err != nil {
			t.Fatal(err)
		}
		ok := !padded || strings.HasSuffix(h, "=")
		for _, c := range need {
			ok = ok && strings.ContainsRune(h, c)
		}
		if ok {
			return h
		}
	}
	t.Fatalf("no header contains %q", need)
	return ""
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	urlSafe := strings.NewReplacer("+", "-", "/", "_").Replace(headerWith(t, "+/", false))
	unpadded := strings.TrimRight(headerWith(t, "=", true), "=")
	valid := func(v any) string {
		h, err := x402.EncodeHeader(v)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	validPR := valid(capturedPaymentRequired())
	big := capturedPaymentRequired()
	big.Resource.Description = strings.Repeat("d", x402.MaxHeaderBytes)

	type decoder struct {
		name  string
		fn    func(string) (any, error)
		valid string // a header the decoder accepts
	}
	decoders := []decoder{
		{"PaymentRequired", func(s string) (any, error) { return x402.DecodePaymentRequired(s) }, validPR},
		{"PaymentSignature", func(s string) (any, error) { return x402.DecodePaymentSignature(s) }, valid(capturedPaymentPayload(t))},
		{"XPayment", func(s string) (any, error) { return x402.DecodeXPayment(s) }, valid(v1Payload(t))},
		{"SettleResponse", func(s string) (any, error) { return x402.DecodeSettleResponse(s) }, valid(settleSuccess())},
	}
	for _, d := range decoders {
		if _, err := d.fn(d.valid); err != nil {
			t.Fatalf("%s refuses its valid header: %v", d.name, err)
		}
		// Go's base64 decoder skips CR and LF even in strict mode; x402 headers never hold them.
		for _, ws := range []struct{ name, s string }{{"LF", "\n"}, {"CRLF", "\r\n"}, {"space", " "}, {"tab", "\t"}} {
			t.Run(d.name+"/embedded "+ws.name, func(t *testing.T) {
				t.Parallel()
				got, err := d.fn(d.valid[:8] + ws.s + d.valid[8:])
				wantMalformed(t, err, x402.ReasonInvalidPayload)
				if !reflect.ValueOf(got).IsNil() {
					t.Fatalf("decoder returned %+v with an error", got)
				}
			})
		}
	}
	// Inputs every decoder must refuse as undecodable.
	common := []struct {
		name, in string
	}{
		{"empty", ""},
		{"spaces", "   "},
		{"URL-safe alphabet", urlSafe},
		{"missing padding", unpadded},
		{"not base64", "not base64!"},
		{"base64 with a star", "eyJ4NDAy*mVyc2lvbiI6Mn0="},
		{"non-canonical padding bits", "eB=="},
		{"non-JSON", b64("x402Version=2")},
		{"truncated JSON", b64(`{"x402Version":2,`)},
		{"JSON null", b64("null")},
		{"JSON null with spaces", b64(" null ")},
		{"JSON array", b64("[]")},
		{"JSON string", b64(`"hello"`)},
		{"JSON number", b64("2")},
		{"trailing garbage", b64(`{"x402Version":2} x`)},
		{"raw JSON, not base64", capturedPaymentRequiredJSON},
		{"oversized", valid(big)},
	}
	for _, d := range decoders {
		for _, tc := range common {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := d.fn(tc.in)
				wantMalformed(t, err, x402.ReasonInvalidPayload)
				if !reflect.ValueOf(got).IsNil() {
					t.Fatalf("decoder returned %+v with an error", got)
				}
			})
		}
	}

	// Decoder-specific refusals.
	payloadWith := func(mutate func(map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(capturedPaymentPayloadJSON), &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		return b64(string(mustMarshal(t, m)))
	}
	v1With := func(mutate func(map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(mustMarshal(t, v1Payload(t)), &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		return b64(string(mustMarshal(t, m)))
	}
	specific := []struct {
		name   string
		dec    decoder
		in     string
		reason x402.Reason
	}{
		{"v1 PAYMENT-REQUIRED", decoders[0], b64(`{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[]}`), x402.ReasonInvalidVersion},
		{"version 3", decoders[0], b64(`{"x402Version":3,"accepts":[]}`), x402.ReasonInvalidVersion},
		{"no version", decoders[0], b64(`{"accepts":[]}`), x402.ReasonInvalidVersion},
		{"version a string", decoders[0], b64(`{"x402Version":"2","accepts":[]}`), x402.ReasonInvalidPayload},
		{"version a float", decoders[0], b64(`{"x402Version":2.5,"accepts":[]}`), x402.ReasonInvalidPayload},
		{"accepted null", decoders[1], payloadWith(func(m map[string]any) { m["accepted"] = nil }), x402.ReasonInvalidPayload},
		{"accepted missing", decoders[1], payloadWith(func(m map[string]any) { delete(m, "accepted") }), x402.ReasonInvalidPayload},
		{"accepted not an object", decoders[1], payloadWith(func(m map[string]any) { m["accepted"] = "exact" }), x402.ReasonInvalidPayload},
		{"payload missing", decoders[1], payloadWith(func(m map[string]any) { delete(m, "payload") }), x402.ReasonInvalidPayload},
		{"payload null", decoders[1], payloadWith(func(m map[string]any) { m["payload"] = nil }), x402.ReasonInvalidPayload},
		{"version 1 in PAYMENT-SIGNATURE", decoders[1], payloadWith(func(m map[string]any) { m["x402Version"] = 1 }), x402.ReasonInvalidVersion},
		{"version 3 in PAYMENT-SIGNATURE", decoders[1], payloadWith(func(m map[string]any) { m["x402Version"] = 3 }), x402.ReasonInvalidVersion},
		{"version missing in PAYMENT-SIGNATURE", decoders[1], payloadWith(func(m map[string]any) { delete(m, "x402Version") }), x402.ReasonInvalidVersion},
		{"maxTimeoutSeconds string", decoders[1], payloadWith(func(m map[string]any) {
			m["accepted"].(map[string]any)["maxTimeoutSeconds"] = "60"
		}), x402.ReasonInvalidPayload},
		{"v2 payload as X-PAYMENT", decoders[2], b64(capturedPaymentPayloadJSON), x402.ReasonInvalidVersion},
		{"X-PAYMENT version 2", decoders[2], v1With(func(m map[string]any) { m["x402Version"] = 2 }), x402.ReasonInvalidVersion},
		{"X-PAYMENT unknown network", decoders[2], v1With(func(m map[string]any) { m["network"] = "base-mainnet" }), x402.ReasonInvalidNetwork},
		{"X-PAYMENT CAIP-2 network", decoders[2], v1With(func(m map[string]any) { m["network"] = "eip155:84532" }), x402.ReasonInvalidNetwork},
		{"X-PAYMENT payload missing", decoders[2], v1With(func(m map[string]any) { delete(m, "payload") }), x402.ReasonInvalidPayload},
		{"X-PAYMENT payload null", decoders[2], v1With(func(m map[string]any) { m["payload"] = nil }), x402.ReasonInvalidPayload},
		{"settle success not bool", decoders[3], b64(`{"success":"true","transaction":"","network":""}`), x402.ReasonInvalidPayload},
	}
	for _, tc := range specific {
		t.Run(tc.dec.name+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			var got any
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("decoder panicked: %v", r)
					}
				}()
				got, err = tc.dec.fn(tc.in)
			}()
			wantMalformed(t, err, tc.reason)
			if !reflect.ValueOf(got).IsNil() {
				t.Fatalf("decoder returned %+v with an error", got)
			}
		})
	}
}

func TestDecodeHeaderSizeBoundary(t *testing.T) {
	t.Parallel()
	// A JSON document of exactly 3/4 of the bound encodes to exactly MaxHeaderBytes.
	build := func(jsonLen int) string {
		s := settleSuccess()
		base := len(mustMarshal(t, s))
		s.ErrorMessage = strings.Repeat("m", jsonLen-base-len(`,"errorMessage":""`))
		b := mustMarshal(t, s)
		if len(b) != jsonLen {
			t.Fatalf("built %d bytes of JSON, want %d", len(b), jsonLen)
		}
		h, _ := x402.EncodeHeader(s)
		return h
	}
	atLimit := build(x402.MaxHeaderBytes / 4 * 3)
	if len(atLimit) != x402.MaxHeaderBytes {
		t.Fatalf("header is %d bytes, want %d", len(atLimit), x402.MaxHeaderBytes)
	}
	if _, err := x402.DecodeSettleResponse(atLimit); err != nil {
		t.Fatalf("header of exactly MaxHeaderBytes refused: %v", err)
	}
	over := build(x402.MaxHeaderBytes/4*3 + 1)
	_, err := x402.DecodeSettleResponse(over)
	wantMalformed(t, err, x402.ReasonInvalidPayload)
}

func TestMarshal(t *testing.T) {
	t.Parallel()
	extra := x402.Object{"note": json.RawMessage(`"<b>Tom & Jerry</b>"`)}
	pr := capturedPaymentRequired()
	pr.Resource.URL = "http://127.0.0.1:8080/quote?symbol=<BTC>&currency=USD"
	pr.Accepts[0].Extra = extra
	tests := []struct {
		name string
		in   any
		want []string // substrings that must appear literally
	}{
		{"map", map[string]string{"a": "<&>"}, []string{`{"a":"<&>"}`}},
		{"resource URL", pr, []string{`"url":"http://127.0.0.1:8080/quote?symbol=<BTC>&currency=USD"`, `"note":"<b>Tom & Jerry</b>"`}},
		{"requirements alone", pr.Accepts[0], []string{`"note":"<b>Tom & Jerry</b>"`}},
		{"settle message", x402.SettleResponse{ErrorMessage: "a<b&c>d"}, []string{`"errorMessage":"a<b&c>d"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := x402.Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.HasSuffix(b, []byte("\n")) || bytes.HasSuffix(b, []byte(" ")) {
				t.Fatalf("Marshal output ends in white space: %q", b)
			}
			if bytes.Contains(b, []byte(`\u003c`)) || bytes.Contains(b, []byte(`\u0026`)) || bytes.Contains(b, []byte(`\u003e`)) {
				t.Fatalf("Marshal HTML-escaped: %s", b)
			}
			for _, w := range tc.want {
				if !bytes.Contains(b, []byte(w)) {
					t.Fatalf("Marshal = %s\nwant it to contain %s", b, w)
				}
			}
			// The header holds exactly those bytes.
			h, err := x402.EncodeHeader(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if raw, _ := base64.StdEncoding.DecodeString(h); !bytes.Equal(raw, b) {
				t.Fatalf("EncodeHeader encodes %q, Marshal gives %q", raw, b)
			}
		})
	}
}

func TestCapturedPaymentRequiredBytes(t *testing.T) {
	t.Parallel()
	b := mustMarshal(t, capturedPaymentRequired())
	if string(b) != capturedPaymentRequiredJSON {
		t.Fatalf("PaymentRequired\n got %s\nwant %s", b, capturedPaymentRequiredJSON)
	}
	h, err := x402.EncodeHeader(capturedPaymentRequired())
	if err != nil {
		t.Fatal(err)
	}
	if h != b64(capturedPaymentRequiredJSON) {
		t.Fatalf("PAYMENT-REQUIRED header = %s", h)
	}
	// Decoding the captured header gives the same value back.
	got, err := x402.DecodePaymentRequired(b64(capturedPaymentRequiredJSON))
	if err != nil || !reflect.DeepEqual(got, capturedPaymentRequired()) {
		t.Fatalf("decode of captured header = %+v, %v", got, err)
	}
}

func TestCapturedPaymentPayloadBytes(t *testing.T) {
	t.Parallel()
	b := mustMarshal(t, capturedPaymentPayload(t))
	if string(b) != capturedPaymentPayloadJSON {
		t.Fatalf("PaymentPayload\n got %s\nwant %s", b, capturedPaymentPayloadJSON)
	}
	got, err := x402.DecodePaymentSignature(b64(capturedPaymentPayloadJSON))
	if err != nil || !reflect.DeepEqual(got, capturedPaymentPayload(t)) {
		t.Fatalf("decode of captured payload = %+v, %v", got, err)
	}
}

func TestRequirementsAlwaysEmitExtra(t *testing.T) {
	t.Parallel()
	bare := devRequirements(60)
	bare.Extra = nil
	empty := devRequirements(60)
	empty.Extra = x402.Object{}
	tests := []struct {
		name string
		in   any
	}{
		{"nil extra", bare},
		{"empty extra", empty},
		{"pointer", &bare},
		{"in PaymentRequired", x402.PaymentRequired{X402Version: 2, Accepts: []x402.PaymentRequirements{bare}}},
		{"in PaymentPayload", x402.PaymentPayload{X402Version: 2, Accepted: &bare, Payload: json.RawMessage(`{}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, enc := range []func(any) ([]byte, error){x402.Marshal, json.Marshal} {
				b, err := enc(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b, []byte(`"maxTimeoutSeconds":60,"extra":{}`)) {
					t.Fatalf("encoding lacks \"extra\":{}: %s", b)
				}
			}
		})
	}
}

func TestSettleResponseWireFields(t *testing.T) {
	t.Parallel()
	// transaction and network are always present (the TS client's schema requires them);
	// the optional fields are omitted when empty.
	b := string(mustMarshal(t, x402.SettleResponse{}))
	if b != `{"success":false,"transaction":"","network":""}` {
		t.Fatalf("empty SettleResponse = %s", b)
	}
	b = string(mustMarshal(t, x402.VerifyResponse{IsValid: true, Payer: devPayer}))
	if b != `{"isValid":true,"payer":"`+devPayer+`"}` {
		t.Fatalf("VerifyResponse = %s", b)
	}
}
