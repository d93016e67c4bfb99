package x402_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quidpay/quid/x402"
)

// The fuzz targets cover every decoder of network input. Each checks that the decoder never
// panics, that every failure is a malformed-input *Error, and that whatever it accepts is stable:
// encoding it, decoding that and encoding again gives the same bytes.

func checkMalformed(t *testing.T, err error) {
	t.Helper()
	var xe *x402.Error
	if !errors.As(err, &xe) || !errors.Is(err, x402.ErrMalformed) || xe.Reason == "" {
		t.Fatalf("decode failure %v (%T) is not a malformed *x402.Error", err, err)
	}
}

// checkStable re-encodes v, decodes the JSON into a fresh value and re-encodes that: the two
// encodings must be identical. It returns the first encoding.
func checkStable[T any](t *testing.T, v *T) []byte {
	t.Helper()
	b1, err := x402.Marshal(v)
	if err != nil {
		t.Fatalf("accepted value does not encode: %v", err)
	}
	var w T
	if err := json.Unmarshal(b1, &w); err != nil {
		t.Fatalf("re-encoded value %s does not decode: %v", b1, err)
	}
	b2, err := x402.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding is not stable\nfirst  %s\nsecond %s", b1, b2)
	}
	return b1
}

func headerSeeds(f *testing.F, values ...any) {
	for _, v := range values {
		h, err := x402.EncodeHeader(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h)
	}
	for _, s := range []string{"", " ", "null", b64("null"), b64("{}"), b64("[]"), b64(`{"x402Version":2}`),
		b64(`{"x402Version":1}`), b64(`{"x402Version":2,"accepted":null,"payload":{}}`), "eB==", "e===", "=",
		b64(`{"x402Version":2,"accepts":[{}],"extensions":{"k":null}}`), b64("{\"a\":\"\xff\xfe\"}")} {
		f.Add(s)
	}
}

func FuzzDecodePaymentRequired(f *testing.F) {
	withExt := capturedPaymentRequired()
	withExt.Extensions = x402.Object{"bazaar": json.RawMessage(`{"info":{"x":[1,2,3]},"schema":{}}`)}
	headerSeeds(f, capturedPaymentRequired(), withExt)
	f.Fuzz(func(t *testing.T, h string) {
		pr, err := x402.DecodePaymentRequired(h)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		if pr.X402Version != x402.V2 {
			t.Fatalf("accepted version %d", pr.X402Version)
		}
		b := checkStable(t, pr)
		if enc, _ := x402.EncodeHeader(pr); len(enc) <= x402.MaxHeaderBytes {
			again, err := x402.DecodePaymentRequired(enc)
			if err != nil {
				t.Fatalf("re-encoded header refused: %v", err)
			}
			if b2 := mustMarshal(t, again); !bytes.Equal(b, b2) {
				t.Fatalf("header round trip changed the value\n%s\n%s", b, b2)
			}
		}
	})
}

func FuzzDecodePaymentSignature(f *testing.F) {
	headerSeeds(f, capturedPaymentPayload(f), v1Payload(f))
	f.Add(b64(capturedPaymentPayloadJSON))
	f.Fuzz(func(t *testing.T, h string) {
		p, err := x402.DecodePaymentSignature(h)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		if p.X402Version != x402.V2 || p.Accepted == nil || len(p.Payload) == 0 {
			t.Fatalf("accepted an incomplete payload %+v", p)
		}
		b := checkStable(t, p)
		if enc, _ := x402.EncodeHeader(p); len(enc) <= x402.MaxHeaderBytes {
			again, err := x402.DecodePaymentSignature(enc)
			if err != nil {
				t.Fatalf("re-encoded header %s refused: %v", b, err)
			}
			if b2 := mustMarshal(t, again); !bytes.Equal(b, b2) {
				t.Fatalf("header round trip changed the value\n%s\n%s", b, b2)
			}
		}
		// What Match does with it must not panic either.
		x402.Match(p.X402Version, devRequirements(60), *p.Accepted)
		_, _ = p.ExactEVM()
	})
}

func FuzzDecodeXPayment(f *testing.F) {
	headerSeeds(f, v1Payload(f), capturedPaymentPayload(f))
	f.Fuzz(func(t *testing.T, h string) {
		p, err := x402.DecodeXPayment(h)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		if p.X402Version != x402.V1 || p.Accepted == nil || len(p.Payload) == 0 {
			t.Fatalf("accepted an incomplete payload %+v", p)
		}
		name, ok := p.Accepted.Network.V1Name()
		if !ok {
			t.Fatalf("accepted network %q has no v1 name", p.Accepted.Network)
		}
		v1 := x402.V1PaymentPayload{X402Version: x402.V1, Scheme: p.Accepted.Scheme, Network: name, Payload: p.Payload}
		b := checkStable(t, &v1)
		if enc, _ := x402.EncodeHeader(v1); len(enc) <= x402.MaxHeaderBytes {
			again, err := x402.DecodeXPayment(enc)
			if err != nil {
				t.Fatalf("re-encoded X-PAYMENT %s refused: %v", b, err)
			}
			if again.Accepted.Scheme != p.Accepted.Scheme || again.Accepted.Network != p.Accepted.Network {
				t.Fatalf("round trip changed accepted: %+v -> %+v", p.Accepted, again.Accepted)
			}
			var c1, c2 bytes.Buffer
			if json.Compact(&c1, p.Payload) != nil || json.Compact(&c2, again.Payload) != nil || !bytes.Equal(c1.Bytes(), c2.Bytes()) {
				t.Fatalf("round trip changed the payload: %s -> %s", p.Payload, again.Payload)
			}
		}
	})
}

func FuzzDecodeSettleResponse(f *testing.F) {
	fail := settleFailure()
	fail.ErrorMessage = "reverted: <nonce> & more"
	fail.Extensions = x402.Object{"bazaar": json.RawMessage(`{"status":"success"}`)}
	headerSeeds(f, settleSuccess(), fail)
	f.Fuzz(func(t *testing.T, h string) {
		s, err := x402.DecodeSettleResponse(h)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		b := checkStable(t, s)
		if enc, _ := x402.EncodeHeader(s); len(enc) <= x402.MaxHeaderBytes {
			again, err := x402.DecodeSettleResponse(enc)
			if err != nil {
				t.Fatalf("re-encoded header refused: %v", err)
			}
			if b2 := mustMarshal(t, again); !bytes.Equal(b, b2) {
				t.Fatalf("header round trip changed the value\n%s\n%s", b, b2)
			}
		}
	})
}

func FuzzDecodeFacilitatorRequest(f *testing.F) {
	v2, err := x402.EncodeFacilitatorRequest(capturedPaymentPayload(f), devRequirements(300))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v2)
	f.Add(body(f, 1, v1Payload(f), v1Requirements()))
	f.Add(body(f, 2, json.RawMessage(capturedPaymentPayloadJSON), nil))
	f.Add([]byte(`{"x402Version":2,"paymentPayload":null,"paymentRequirements":null}`))
	f.Add([]byte(`{"paymentPayload":{"x402Version":1,"scheme":"exact","network":"base","payload":{}},"paymentRequirements":{"network":"base"}}`))
	f.Add([]byte(`{"paymentPayload":{"x402Version":2,"accepted":{},"payload":0},"paymentRequirements":{}}`))
	f.Add([]byte("null"))
	f.Add([]byte(""))
	f.Add([]byte(strings.Repeat("[", 1000)))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, r, err := x402.DecodeFacilitatorRequest(in)
		if err != nil {
			checkMalformed(t, err)
			if p != nil {
				t.Fatalf("payload %+v returned with an error", p)
			}
			return
		}
		if p == nil || p.Accepted == nil || len(p.Payload) == 0 || (p.X402Version != x402.V1 && p.X402Version != x402.V2) {
			t.Fatalf("accepted an incomplete request: %+v", p)
		}
		b1, err := x402.EncodeFacilitatorRequest(p, r)
		if err != nil {
			t.Fatalf("decoded request does not re-encode: %v", err)
		}
		if len(b1) > x402.MaxRequestBytes {
			return
		}
		p2, r2, err := x402.DecodeFacilitatorRequest(b1)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", b1, err)
		}
		b2, err := x402.EncodeFacilitatorRequest(p2, r2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("request encoding is not stable (%v)\nfirst  %s\nsecond %s", err, b1, b2)
		}
		x402.Match(p.X402Version, r, *p.Accepted)
	})
}
