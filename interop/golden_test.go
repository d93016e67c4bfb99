package interop

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// These tests need no node: they decode what the real TypeScript packages put on the wire,
// captured by scripts/golden.mjs into testdata/ts-wire.json, with quid's x402 and evm packages.
// If quid's wire types drift from the ecosystem's, they fail wherever Go runs.

// tsWire is testdata/ts-wire.json.
type tsWire struct {
	Versions map[string]string `json:"versions"`
	V2       struct {
		Network          x402.Network `json:"network"`
		PaymentRequired  string       `json:"paymentRequired"`
		PaymentSignature string       `json:"paymentSignature"`
		VerifyRequest    string       `json:"verifyRequest"`
		SettleRequest    string       `json:"settleRequest"`
		PaymentResponse  string       `json:"paymentResponse"`
		Body             string       `json:"body"`
	} `json:"v2"`
	V1 struct {
		Network             string `json:"network"`
		PaymentRequiredBody string `json:"paymentRequiredBody"`
		XPayment            string `json:"xPayment"`
		VerifyRequest       string `json:"verifyRequest"`
		SettleRequest       string `json:"settleRequest"`
		XPaymentResponse    string `json:"xPaymentResponse"`
		Body                string `json:"body"`
	} `json:"v1"`
}

// The parties of the captures: devnet accounts (public test keys) and the devnet token.
const (
	goldenBuyerKey  = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a" // account 2
	goldenPaymentID = "pay_quid_golden_0000000001"
)

var (
	goldenBuyer  = common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
	goldenSeller = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
)

func loadWire(t *testing.T) *tsWire {
	t.Helper()
	b, err := os.ReadFile("testdata/ts-wire.json")
	if err != nil {
		t.Fatal(err)
	}
	var w tsWire
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	for pkg, want := range map[string]string{"@x402/core": "2.27.0", "@x402/evm": "2.27.0", "@x402/express": "2.27.0",
		"@x402/fetch": "2.27.0", "x402-fetch": "1.2.0", "x402-express": "1.2.0"} {
		if w.Versions[pkg] != want {
			t.Fatalf("testdata/ts-wire.json was captured with %s %s, want %s: regenerate it", pkg, w.Versions[pkg], want)
		}
	}
	return &w
}

// sameBytes checks that quid re-encodes a captured value to the very bytes the TypeScript
// package wrote: member order, escaping and omitted fields included.
func sameBytes(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: quid encodes\n%s\nthe TypeScript package wrote\n%s", what, got, want)
	}
}

func decodeB64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkSigned verifies an EIP-3009 payload the TypeScript client signed: quid recovers the payer
// from quid's own digest, and quid signing the same authorization with the same key produces the
// same 65 bytes (ECDSA signatures here are deterministic, RFC 6979).
func checkSigned(t *testing.T, payload json.RawMessage, req x402.PaymentRequirements) evm.Authorization {
	t.Helper()
	var ex x402.ExactEVMPayload
	if err := json.Unmarshal(payload, &ex); err != nil {
		t.Fatal(err)
	}
	auth, err := evm.ParseAuthorization(ex.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := evm.ParseSignature(ex.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if v := ex.Signature[len(ex.Signature)-2:]; v != "1b" && v != "1c" {
		t.Errorf("signature v is 0x%s, want 0x1b or 0x1c", v)
	}
	chainID, ok := req.Network.ChainID()
	if !ok {
		t.Fatalf("network %s", req.Network)
	}
	name, _ := req.Extra.String("name")
	version, _ := req.Extra.String("version")
	domain := evm.Domain{Name: name, Version: version, ChainID: chainID, VerifyingContract: common.HexToAddress(req.Asset)}
	signer, err := evm.Recover(auth.Digest(domain), sig)
	if err != nil || signer != goldenBuyer || auth.From != goldenBuyer {
		t.Fatalf("signature recovers %s (%v), authorization from %s; want %s", signer, err, auth.From, goldenBuyer)
	}
	if auth.To != goldenSeller || auth.Value.String() != req.Amount {
		t.Errorf("authorization pays %s to %s, want %s to %s", auth.Value, auth.To, req.Amount, goldenSeller)
	}
	key, err := wallet.ParseKey(goldenBuyerKey)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := evm.SignAuthorization(key, domain, &auth)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "signature", mine.String(), ex.Signature)
	return auth
}

func TestGoldenV2(t *testing.T) {
	w := loadWire(t)

	// The 402 of @x402/express.
	pr, err := x402.DecodePaymentRequired(w.V2.PaymentRequired)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Accepts) != 1 || pr.Resource == nil || pr.Error != string(x402.ReasonPaymentRequired) {
		t.Fatalf("PAYMENT-REQUIRED %+v", pr)
	}
	req := pr.Accepts[0]
	if req.Scheme != x402.SchemeExact || req.Network != w.V2.Network || req.Amount != "10000" ||
		req.Asset != evm.DevTokenAddress.Hex() || req.PayTo != goldenSeller.Hex() || req.MaxTimeoutSeconds != 300 {
		t.Fatalf("requirements %+v", req)
	}
	if _, ok := pr.Extensions[facilitator.ExtensionBazaar]; !ok {
		t.Fatalf("no bazaar declaration in %v", pr.Extensions)
	}
	if _, ok := pr.Extensions[paywall.ExtensionPaymentIdentifier]; !ok {
		t.Fatalf("no payment-identifier declaration in %v", pr.Extensions)
	}
	h, _ := x402.EncodeHeader(pr)
	sameBytes(t, "PAYMENT-REQUIRED", decodeB64(t, h), decodeB64(t, w.V2.PaymentRequired))

	// The PAYMENT-SIGNATURE @x402/fetch answered it with.
	p, err := x402.DecodePaymentSignature(w.V2.PaymentSignature)
	if err != nil {
		t.Fatal(err)
	}
	if !x402.Match(x402.V2, req, *p.Accepted) {
		t.Fatalf("accepted %+v does not match the requirements %+v", p.Accepted, req)
	}
	if p.Resource == nil || p.Resource.URL != pr.Resource.URL || p.Resource.Description != pr.Resource.Description ||
		p.Resource.MimeType != pr.Resource.MimeType {
		t.Errorf("resource %+v, want the 402's %+v", p.Resource, pr.Resource)
	}
	if !jsonEqual(p.Extensions[facilitator.ExtensionBazaar], pr.Extensions[facilitator.ExtensionBazaar]) {
		t.Errorf("bazaar echo\n%s\nwant\n%s", p.Extensions[facilitator.ExtensionBazaar], pr.Extensions[facilitator.ExtensionBazaar])
	}
	var pid struct {
		Info struct {
			Required bool   `json:"required"`
			ID       string `json:"id"`
		} `json:"info"`
	}
	if err := json.Unmarshal(p.Extensions[paywall.ExtensionPaymentIdentifier], &pid); err != nil || pid.Info.ID != goldenPaymentID {
		t.Errorf("payment-identifier echo %s", p.Extensions[paywall.ExtensionPaymentIdentifier])
	}
	auth := checkSigned(t, p.Payload, req)
	if auth.ValidAfter != 0 {
		t.Errorf("validAfter %d, want 0 (@x402/evm 2.27)", auth.ValidAfter)
	}
	h, _ = x402.EncodeHeader(p)
	sameBytes(t, "PAYMENT-SIGNATURE", decodeB64(t, h), decodeB64(t, w.V2.PaymentSignature))

	// The /verify and /settle bodies @x402/express posted to its facilitator.
	for name, body := range map[string]string{"/verify": w.V2.VerifyRequest, "/settle": w.V2.SettleRequest} {
		fp, freq, err := x402.DecodeFacilitatorRequest([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, _ := x402.Marshal(fp)
		b, _ := x402.Marshal(p)
		sameBytes(t, name+" paymentPayload", string(a), string(b))
		if !x402.Match(x402.V2, req, freq) || !x402.Match(x402.V2, freq, req) {
			t.Errorf("%s: paymentRequirements %+v, want %+v", name, freq, req)
		}
		again, err := x402.EncodeFacilitatorRequest(fp, freq)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, name+" body", string(again), body)
	}

	// The PAYMENT-RESPONSE it sent after settling.
	s, err := x402.DecodeSettleResponse(w.V2.PaymentResponse)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Success || s.Network != w.V2.Network || s.Payer != goldenBuyer.Hex() || !isTxHash(s.Transaction) {
		t.Fatalf("PAYMENT-RESPONSE %+v", s)
	}
	h, _ = x402.EncodeHeader(s)
	sameBytes(t, "PAYMENT-RESPONSE", decodeB64(t, h), decodeB64(t, w.V2.PaymentResponse))
}

func TestGoldenV1(t *testing.T) {
	w := loadWire(t)

	// The 402 body of x402-express 1.2.
	var pr x402.V1PaymentRequired
	if err := json.Unmarshal([]byte(w.V1.PaymentRequiredBody), &pr); err != nil {
		t.Fatal(err)
	}
	if pr.X402Version != x402.V1 || pr.Error != x402.V1ErrorPaymentRequired || len(pr.Accepts) != 1 {
		t.Fatalf("v1 402 %+v", pr)
	}
	req, err := pr.Accepts[0].ToV2()
	if err != nil {
		t.Fatal(err)
	}
	if req.Network != x402.EIP155(baseSepolia) || req.Amount != "10000" || req.Asset != evm.DevTokenAddress.Hex() || req.PayTo != goldenSeller.Hex() {
		t.Fatalf("v1 requirements %+v", req)
	}

	// The X-PAYMENT of x402-fetch 1.2.
	p, err := x402.DecodeXPayment(w.V1.XPayment)
	if err != nil {
		t.Fatal(err)
	}
	if !x402.Match(x402.V1, req, *p.Accepted) {
		t.Fatalf("X-PAYMENT accepted %+v, requirements %+v", p.Accepted, req)
	}
	auth := checkSigned(t, p.Payload, req)
	// v1 clients start the window ten minutes back and end it maxTimeoutSeconds ahead.
	if auth.ValidBefore-auth.ValidAfter != 600+uint64(req.MaxTimeoutSeconds) {
		t.Errorf("validity window %d..%d, want 600+%d s long", auth.ValidAfter, auth.ValidBefore, req.MaxTimeoutSeconds)
	}

	// The bodies x402-express 1.2 posted to its facilitator decode as v1, into the same payment.
	for name, body := range map[string]string{"/verify": w.V1.VerifyRequest, "/settle": w.V1.SettleRequest} {
		fp, freq, err := x402.DecodeFacilitatorRequest([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fp.X402Version != x402.V1 || !jsonEqual(fp.Payload, p.Payload) || freq.Amount != req.Amount || freq.Network != req.Network {
			t.Errorf("%s: %+v %+v", name, fp, freq)
		}
		// quid writes v1 requirements in another member order; the content must be the same.
		again, err := x402.EncodeFacilitatorRequest(fp, freq)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqualExcept(again, []byte(body), "outputSchema") {
			t.Errorf("%s: quid re-encodes\n%s\nthe TypeScript package wrote\n%s", name, again, body)
		}
	}

	s, err := x402.DecodeSettleResponse(w.V1.XPaymentResponse)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Success || string(s.Network) != w.V1.Network || s.Payer != goldenBuyer.Hex() || !isTxHash(s.Transaction) {
		t.Fatalf("X-PAYMENT-RESPONSE %+v", s)
	}
}

// jsonEqualExcept compares two JSON documents ignoring members named skip at any depth:
// outputSchema is x402-express's discovery hint, which quid's facilitator client does not carry.
func jsonEqualExcept(a, b []byte, skip string) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	strip(va, skip)
	strip(vb, skip)
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

func strip(v any, skip string) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, skip)
		for _, c := range v {
			strip(c, skip)
		}
	case []any:
		for _, c := range v {
			strip(c, skip)
		}
	}
}
