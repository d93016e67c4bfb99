package x402_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/quidpay/quid/x402"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current encoders")

// v1PaymentRequired is the JSON body of a v1 402 for the Base Sepolia USDC requirement, built
// from v2 requirements with ToV1 as a seller does for legacy clients.
func v1PaymentRequired(t testing.TB) x402.V1PaymentRequired {
	extra := x402.Object{}
	extra.SetString("name", "USDC")
	extra.SetString("version", "2")
	r := x402.PaymentRequirements{Scheme: "exact", Network: "eip155:84532", Amount: "10000",
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60, Extra: extra}
	v1, ok := r.ToV1(x402.ResourceInfo{URL: "https://api.example.com/premium-data",
		Description: "Access to premium market data", MimeType: "application/json"})
	if !ok {
		t.Fatal("base-sepolia has no v1 name")
	}
	return x402.V1PaymentRequired{X402Version: x402.V1, Error: x402.V1ErrorPaymentRequired,
		Accepts: []x402.V1Requirements{v1}}
}

type goldenCase struct {
	file   string
	encode func(t *testing.T) []byte
	// check decodes the golden bytes and compares them with the fixture they came from.
	check func(t *testing.T, golden []byte)
	// captured, when set, is the golden's exact content as reference/x402-protocol.md §1.1-§1.2
	// captured it (member order and spelling), checked independently of the encoder.
	captured string
}

func goldenCases() []goldenCase {
	header := func(v any) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			h, err := x402.EncodeHeader(v)
			if err != nil {
				t.Fatal(err)
			}
			return []byte(h)
		}
	}
	body := func(v func(t *testing.T) any) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return mustMarshal(t, v(t)) }
	}
	decodesTo := func(decode func(string) (any, error), want func(t *testing.T) any) func(*testing.T, []byte) {
		return func(t *testing.T, golden []byte) {
			got, err := decode(string(golden))
			if err != nil {
				t.Fatalf("golden does not decode: %v", err)
			}
			if w := want(t); !reflect.DeepEqual(got, w) {
				t.Fatalf("golden decodes to %+v, want %+v", got, w)
			}
		}
	}
	unmarshalsTo := func(newV func() any, want func(t *testing.T) any) func(*testing.T, []byte) {
		return func(t *testing.T, golden []byte) {
			v := newV()
			if err := json.Unmarshal(golden, v); err != nil {
				t.Fatalf("golden is not JSON: %v", err)
			}
			if w := want(t); !reflect.DeepEqual(v, w) {
				t.Fatalf("golden reads back as %+v, want %+v", v, w)
			}
		}
	}
	pr := func(*testing.T) any { return capturedPaymentRequired() }
	pp := func(t *testing.T) any { return capturedPaymentPayload(t) }
	ok := func(*testing.T) any { return ptr(settleSuccess()) }
	fail := func(*testing.T) any { return ptr(settleFailure()) }
	v1body := func(t *testing.T) any { return ptr(v1PaymentRequired(t)) }
	v1pay := func(t *testing.T) any { return ptr(v1Payload(t)) }

	decPR := func(s string) (any, error) { return x402.DecodePaymentRequired(s) }
	decPS := func(s string) (any, error) { return x402.DecodePaymentSignature(s) }
	decSR := func(s string) (any, error) { return x402.DecodeSettleResponse(s) }

	return []goldenCase{
		{"payment_required.json.golden", body(pr), unmarshalsTo(func() any { return new(x402.PaymentRequired) }, pr),
			capturedPaymentRequiredJSON},
		{"payment_required.header.golden", header(capturedPaymentRequired()), decodesTo(decPR, pr), ""},
		{"payment_payload_v2.json.golden", body(pp), unmarshalsTo(func() any { return new(x402.PaymentPayload) }, pp),
			capturedPaymentPayloadJSON},
		{"payment_payload_v2.header.golden", func(t *testing.T) []byte { return header(capturedPaymentPayload(t))(t) }, decodesTo(decPS, pp), ""},
		{"settle_success.json.golden", body(ok), unmarshalsTo(func() any { return new(x402.SettleResponse) }, ok),
			`{"success":true,"payer":"` + devPayer + `","transaction":"` + devTxHash + `","network":"eip155:31337"}`},
		{"settle_success.header.golden", header(settleSuccess()), decodesTo(decSR, ok), ""},
		{"settle_failure.json.golden", body(fail), unmarshalsTo(func() any { return new(x402.SettleResponse) }, fail),
			`{"success":false,"errorReason":"invalid_exact_evm_nonce_already_used","payer":"` + devPayer +
				`","transaction":"","network":"eip155:31337"}`},
		{"settle_failure.header.golden", header(settleFailure()), decodesTo(decSR, fail), ""},
		{"payment_required_v1.json.golden", body(v1body), unmarshalsTo(func() any { return new(x402.V1PaymentRequired) }, v1body),
			`{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[` +
				`{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000",` +
				`"resource":"https://api.example.com/premium-data","description":"Access to premium market data",` +
				`"mimeType":"application/json","outputSchema":{},"payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C",` +
				`"maxTimeoutSeconds":60,"asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","extra":{"name":"USDC","version":"2"}}]}`},
		{"x_payment_v1.json.golden", body(v1pay), unmarshalsTo(func() any { return new(x402.V1PaymentPayload) }, v1pay),
			`{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"authorization":{"from":"` + devPayer +
				`","to":"` + devPayTo + `","value":"1000","validAfter":"0","validBefore":"1795320287","nonce":"` + devNonce +
				`"},"signature":"` + devSig + `"}}`},
		{"facilitator_request_v2.json.golden",
			func(t *testing.T) []byte {
				b, err := x402.EncodeFacilitatorRequest(capturedPaymentPayload(t), devRequirements(300))
				if err != nil {
					t.Fatal(err)
				}
				return b
			},
			func(t *testing.T, golden []byte) {
				p, r, err := x402.DecodeFacilitatorRequest(golden)
				if err != nil || !reflect.DeepEqual(p, capturedPaymentPayload(t)) || !reflect.DeepEqual(r, devRequirements(300)) {
					t.Fatalf("golden decodes to %+v %+v %v", p, r, err)
				}
			},
			`{"x402Version":2,"paymentPayload":` + capturedPaymentPayloadJSON + `,"paymentRequirements":` +
				`{"scheme":"exact","network":"eip155:31337","amount":"1000","asset":"` + devAsset + `","payTo":"` + devPayTo +
				`","maxTimeoutSeconds":300,"extra":{"name":"USD Coin","version":"2"}}}`},
	}
}

// TestGolden compares every wire encoding with its committed file. After an intended change of
// the wire format, rewrite them with: go test ./x402 -run Golden -update
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, gc := range goldenCases() {
		t.Run(gc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", gc.file)
			got := gc.encode(t)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with: go test ./x402 -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is stale or the wire format changed\n got %s\nwant %s\n"+
					"if the change is intended: go test ./x402 -run Golden -update", path, got, want)
			}
			gc.check(t, want)
			if gc.captured != "" && string(want) != gc.captured {
				t.Fatalf("%s differs from the captured wire form\n got %s\nwant %s", path, want, gc.captured)
			}
		})
	}
}
