package x402_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/quidpay/quid/x402"
)

func TestRequirementsV1RoundTrip(t *testing.T) {
	t.Parallel()
	resource := x402.ResourceInfo{URL: "https://api.example.com/premium-data", Description: "Access to premium market data",
		MimeType: "application/json"}
	tests := []struct {
		name    string
		network x402.Network
		v1name  string
	}{
		{"base sepolia", "eip155:84532", "base-sepolia"},
		{"base", "eip155:8453", "base"},
		{"ethereum", "eip155:1", "ethereum"},
		{"skale", "eip155:324705682", "skale-base-sepolia"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := devRequirements(60)
			r.Network = tc.network
			v1, ok := r.ToV1(resource)
			if !ok {
				t.Fatalf("ToV1 has no name for %s", tc.network)
			}
			if v1.Network != tc.v1name || v1.MaxAmountRequired != r.Amount || v1.Resource != resource.URL ||
				v1.Description != resource.Description || v1.MimeType != resource.MimeType || string(v1.OutputSchema) != "{}" {
				t.Fatalf("ToV1 = %+v", v1)
			}
			back, err := v1.ToV2()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, r) {
				t.Fatalf("ToV2(ToV1(r))\n got %+v\nwant %+v", back, r)
			}
		})
	}
}

func TestToV1(t *testing.T) {
	t.Parallel()
	local := devRequirements(60) // eip155:31337
	if v1, ok := local.ToV1(x402.ResourceInfo{URL: "http://x"}); ok {
		t.Fatalf("ToV1 named a chain v1 cannot name: %+v", v1)
	}
	solana := devRequirements(60)
	solana.Network = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
	if _, ok := solana.ToV1(x402.ResourceInfo{}); ok {
		t.Fatal("ToV1 named a solana network")
	}
	// Legacy clients zod-parse extra and outputSchema; both must be present even when unset.
	bare := devRequirements(60)
	bare.Network = "eip155:84532"
	bare.Extra = nil
	v1, ok := bare.ToV1(x402.ResourceInfo{URL: "http://x"})
	if !ok {
		t.Fatal("ToV1 failed")
	}
	b := string(mustMarshal(t, v1))
	for _, want := range []string{`"outputSchema":{}`, `"extra":{}`, `"description":""`, `"mimeType":""`} {
		if !strings.Contains(b, want) {
			t.Fatalf("v1 requirements %s lack %s", b, want)
		}
	}
}

func TestV1RequirementsToV2UnknownNetwork(t *testing.T) {
	t.Parallel()
	r := v1Requirements()
	r.Network = "localhost"
	_, err := r.ToV2()
	wantMalformed(t, err, x402.ReasonInvalidNetwork)
}
