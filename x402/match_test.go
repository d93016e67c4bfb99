package x402_test

import (
	"encoding/json"
	"testing"

	"github.com/quidpay/quid/x402"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	req := devRequirements(300)
	req.Extra["assetTransferMethod"] = json.RawMessage(`"eip3009"`)
	req.Extra["limits"] = json.RawMessage(`{"a":1,"b":[1,2,{"c":null}]}`)

	with := func(f func(*x402.PaymentRequirements)) x402.PaymentRequirements {
		r := req
		r.Extra = x402.Object{}
		for k, v := range req.Extra {
			r.Extra[k] = v
		}
		f(&r)
		return r
	}
	tests := []struct {
		name     string
		version  int
		required x402.PaymentRequirements
		accepted x402.PaymentRequirements
		want     bool
	}{
		{"identical", 2, req, req, true},
		{"scheme", 2, req, with(func(r *x402.PaymentRequirements) { r.Scheme = "upto" }), false},
		{"network", 2, req, with(func(r *x402.PaymentRequirements) { r.Network = "eip155:8453" }), false},
		{"amount", 2, req, with(func(r *x402.PaymentRequirements) { r.Amount = "1001" }), false},
		{"amount spelled differently", 2, req, with(func(r *x402.PaymentRequirements) { r.Amount = "01000" }), false},
		{"asset", 2, req, with(func(r *x402.PaymentRequirements) { r.Asset = "0x0000000000000000000000000000000000000001" }), false},
		{"asset case", 2, req, with(func(r *x402.PaymentRequirements) { r.Asset = "0x5fbdb2315678afecb367f032d93f642f64180aa3" }), false},
		{"payTo", 2, req, with(func(r *x402.PaymentRequirements) { r.PayTo = devPayer }), false},
		{"payTo case", 2, req, with(func(r *x402.PaymentRequirements) { r.PayTo = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8" }), false},
		{"maxTimeoutSeconds", 2, req, with(func(r *x402.PaymentRequirements) { r.MaxTimeoutSeconds = 60 }), false},
		{"extra member missing", 2, req, with(func(r *x402.PaymentRequirements) { delete(r.Extra, "version") }), false},
		{"extra member changed", 2, req, with(func(r *x402.PaymentRequirements) { r.Extra.SetString("name", "USDC") }), false},
		{"extra member number vs string", 2, req, with(func(r *x402.PaymentRequirements) { r.Extra["version"] = json.RawMessage(`2`) }), false},
		{"extra nested value changed", 2, req, with(func(r *x402.PaymentRequirements) {
			r.Extra["limits"] = json.RawMessage(`{"a":1,"b":[1,2,{"c":0}]}`)
		}), false},
		{"extra nested array reordered", 2, req, with(func(r *x402.PaymentRequirements) {
			r.Extra["limits"] = json.RawMessage(`{"a":1,"b":[2,1,{"c":null}]}`)
		}), false},
		{"extra nested member order and white space", 2, req, with(func(r *x402.PaymentRequirements) {
			r.Extra["limits"] = json.RawMessage("{ \"b\" : [ 1 , 2 , { \"c\" : null } ] ,\n\t\"a\" : 1.0 }")
		}), true},
		{"extra string escapes", 2, req, with(func(r *x402.PaymentRequirements) { r.Extra["name"] = json.RawMessage(`"USD\u0020Coin"`) }), true},
		{"buyer added extra members", 2, req, with(func(r *x402.PaymentRequirements) {
			r.Extra.SetString("paymentFlow", "authorization")
			r.Extra["clientHint"] = json.RawMessage(`{"x":1}`)
		}), true},
		{"buyer extra with nil required extra", 2, with(func(r *x402.PaymentRequirements) { r.Extra = nil }), req, true},
		{"both extras empty", 2, with(func(r *x402.PaymentRequirements) { r.Extra = nil }), with(func(r *x402.PaymentRequirements) { r.Extra = x402.Object{} }), true},
		{"required extra, accepted none", 2, req, with(func(r *x402.PaymentRequirements) { r.Extra = nil }), false},
		{"extra member is invalid JSON", 2, req, with(func(r *x402.PaymentRequirements) { r.Extra["name"] = json.RawMessage(`"USD Coin`) }), false},
		{"required member null, accepted absent", 2, with(func(r *x402.PaymentRequirements) { r.Extra["memo"] = json.RawMessage(`null`) }), req, false},
		{"v1: scheme and network equal", 1, req, x402.PaymentRequirements{Scheme: "exact", Network: "eip155:31337"}, true},
		{"v1: amount ignored", 1, req, with(func(r *x402.PaymentRequirements) { r.Amount = "1" }), true},
		{"v1: extra ignored", 1, req, with(func(r *x402.PaymentRequirements) { r.Extra = nil }), true},
		{"v1: scheme differs", 1, req, x402.PaymentRequirements{Scheme: "upto", Network: "eip155:31337"}, false},
		{"v1: network differs", 1, req, x402.PaymentRequirements{Scheme: "exact", Network: "eip155:84532"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := x402.Match(tc.version, tc.required, tc.accepted); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMatchDecodedPayload matches a payload as a buyer's client actually writes it: other
// member order, other white space, an added extra member.
func TestMatchDecodedPayload(t *testing.T) {
	t.Parallel()
	accepted := `{"x402Version":2,"payload":{"signature":"0x00"},"accepted":{` +
		`"extra": {"version": "2", "paymentFlow": "authorization", "name": "USD Coin"},` +
		` "maxTimeoutSeconds": 300, "payTo": "` + devPayTo + `", "asset": "` + devAsset + `",` +
		` "amount": "1000", "network": "eip155:31337", "scheme": "exact"}}`
	p, err := x402.DecodePaymentSignature(b64(accepted))
	if err != nil {
		t.Fatal(err)
	}
	other := devRequirements(300)
	other.Amount = "2000"
	got, ok := x402.FindMatch(p, []x402.PaymentRequirements{other, devRequirements(60), devRequirements(300)})
	if !ok || got.MaxTimeoutSeconds != 300 || got.Amount != "1000" {
		t.Fatalf("FindMatch = %+v, %v", got, ok)
	}
}

func TestFindMatch(t *testing.T) {
	t.Parallel()
	a, b := devRequirements(300), devRequirements(300)
	b.Network = "eip155:84532"
	v1, err := x402.DecodeXPayment(b64(string(mustMarshal(t, v1Payload(t)))))
	if err != nil {
		t.Fatal(err)
	}
	base := devRequirements(60)
	base.Network = "eip155:84532"
	tests := []struct {
		name     string
		p        *x402.PaymentPayload
		required []x402.PaymentRequirements
		want     int // index into required, -1 for none
	}{
		{"nil payload", nil, []x402.PaymentRequirements{a}, -1},
		{"nil accepted", &x402.PaymentPayload{X402Version: 2}, []x402.PaymentRequirements{a}, -1},
		{"no requirements", &x402.PaymentPayload{X402Version: 2, Accepted: &a}, nil, -1},
		{"first", &x402.PaymentPayload{X402Version: 2, Accepted: &a}, []x402.PaymentRequirements{a, b}, 0},
		{"second", &x402.PaymentPayload{X402Version: 2, Accepted: &b}, []x402.PaymentRequirements{a, b}, 1},
		{"none", &x402.PaymentPayload{X402Version: 2, Accepted: &base}, []x402.PaymentRequirements{a, b}, -1},
		{"v1 by scheme and network", v1, []x402.PaymentRequirements{a, base}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := x402.FindMatch(tc.p, tc.required)
			if tc.want < 0 {
				if ok {
					t.Fatalf("FindMatch = %+v, want none", got)
				}
				return
			}
			if !ok || got.Network != tc.required[tc.want].Network || got.MaxTimeoutSeconds != tc.required[tc.want].MaxTimeoutSeconds {
				t.Fatalf("FindMatch = %+v, %v; want required[%d]", got, ok, tc.want)
			}
		})
	}
}
