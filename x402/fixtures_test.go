package x402_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/quidpay/quid/x402"
)

// The fixtures reproduce the messages captured from @x402/express and @x402/fetch 2.27 in
// reference/x402-protocol.md §1.1, with the full signature of evm/testdata/eip3009_hardhat0.json
// where the capture shows it truncated.

const (
	devAsset  = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
	devPayTo  = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	devPayer  = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	devNonce  = "0x44dec795aea5cea4e9375a5636427c3d56efaf1b9f308ba3f27706272366aa3a"
	devSig    = "0x11bd676ab280426fb0d97a19fa428864096bf826a0a9c96124038ed2aa87200817100f41ce8456feca1d5a67f87429aeb53c9d8b393f2800cb78fd4f80d6dd801b"
	devTxHash = "0xcdcd7a5a0e5d6e1e2b1c3f1fb1a8a3c7b5f1e8a2d4c6b8a0e2f4d6c8b0a2e4f6"
)

// capturedPaymentRequiredJSON is the decoded PAYMENT-REQUIRED header of §1.1, byte for byte.
const capturedPaymentRequiredJSON = `{"x402Version":2,"error":"Payment required",` +
	`"resource":{"url":"http://127.0.0.1:36757/weather","description":"Weather","mimeType":"application/json"},` +
	`"accepts":[{"scheme":"exact","network":"eip155:31337","amount":"1000",` +
	`"asset":"0x5FbDB2315678afecb367f032d93F642f64180aa3",` +
	`"payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":300,` +
	`"extra":{"name":"USD Coin","version":"2"}}]}`

// capturedPaymentPayloadJSON is the decoded PAYMENT-SIGNATURE of §1.1, in the member order
// @x402/fetch writes (x402Version, payload, resource, accepted), with the full signature.
const capturedPaymentPayloadJSON = `{"x402Version":2,` +
	`"payload":{"authorization":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",` +
	`"to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"1000","validAfter":"0",` +
	`"validBefore":"1795320287",` +
	`"nonce":"0x44dec795aea5cea4e9375a5636427c3d56efaf1b9f308ba3f27706272366aa3a"},` +
	`"signature":"` + devSig + `"},` +
	`"resource":{"url":"http://127.0.0.1:36757/weather","description":"test","mimeType":"application/json"},` +
	`"accepted":{"scheme":"exact","network":"eip155:31337","amount":"1000",` +
	`"asset":"0x5FbDB2315678afecb367f032d93F642f64180aa3",` +
	`"payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":60,` +
	`"extra":{"name":"USD Coin","version":"2"}}}`

func domainExtra() x402.Object {
	e := x402.Object{}
	e.SetString("name", "USD Coin")
	e.SetString("version", "2")
	return e
}

func devRequirements(maxTimeout int64) x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme:            x402.SchemeExact,
		Network:           "eip155:31337",
		Amount:            "1000",
		Asset:             devAsset,
		PayTo:             devPayTo,
		MaxTimeoutSeconds: maxTimeout,
		Extra:             domainExtra(),
	}
}

func capturedPaymentRequired() *x402.PaymentRequired {
	return &x402.PaymentRequired{
		X402Version: x402.V2,
		Error:       string(x402.ReasonPaymentRequired),
		Resource: &x402.ResourceInfo{URL: "http://127.0.0.1:36757/weather", Description: "Weather",
			MimeType: "application/json"},
		Accepts: []x402.PaymentRequirements{devRequirements(300)},
	}
}

func devExactPayload() x402.ExactEVMPayload {
	return x402.ExactEVMPayload{
		Authorization: x402.ExactEVMAuthorization{From: devPayer, To: devPayTo, Value: "1000",
			ValidAfter: "0", ValidBefore: "1795320287", Nonce: devNonce},
		Signature: devSig,
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := x402.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func capturedPaymentPayload(t testing.TB) *x402.PaymentPayload {
	accepted := devRequirements(60)
	return &x402.PaymentPayload{
		X402Version: x402.V2,
		Resource: &x402.ResourceInfo{URL: "http://127.0.0.1:36757/weather", Description: "test",
			MimeType: "application/json"},
		Accepted: &accepted,
		Payload:  mustMarshal(t, devExactPayload()),
	}
}

func settleSuccess() x402.SettleResponse {
	return x402.SettleResponse{Success: true, Payer: devPayer, Transaction: devTxHash, Network: "eip155:31337"}
}

func settleFailure() x402.SettleResponse {
	return x402.SettleResponse{Success: false, ErrorReason: x402.ReasonExactNonceUsed, Payer: devPayer,
		Transaction: "", Network: "eip155:31337"}
}

// v1Requirements is the v1 requirement of §1.2 (with the payTo address spelled out).
func v1Requirements() x402.V1Requirements {
	extra := x402.Object{}
	extra.SetString("name", "USDC")
	extra.SetString("version", "2")
	return x402.V1Requirements{
		Scheme: "exact", Network: "base-sepolia", MaxAmountRequired: "10000",
		Resource: "https://api.example.com/premium-data", Description: "Access to premium market data",
		MimeType: "application/json", OutputSchema: json.RawMessage("null"),
		PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", MaxTimeoutSeconds: 60,
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", Extra: extra,
	}
}

func v1Payload(t testing.TB) x402.V1PaymentPayload {
	return x402.V1PaymentPayload{X402Version: x402.V1, Scheme: "exact", Network: "base-sepolia",
		Payload: mustMarshal(t, devExactPayload())}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// wantMalformed checks that err is an *x402.Error with reason that wraps ErrMalformed.
func wantMalformed(t testing.TB, err error, reason x402.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", reason)
	}
	var xe *x402.Error
	if !errors.As(err, &xe) {
		t.Fatalf("error %v (%T) is not an *x402.Error", err, err)
	}
	if xe.Reason != reason {
		t.Fatalf("reason = %q (%v), want %q", xe.Reason, err, reason)
	}
	if !errors.Is(err, x402.ErrMalformed) {
		t.Fatalf("error %v does not wrap ErrMalformed", err)
	}
}
