package facilitator_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

// FuzzHandler posts arbitrary bodies to /verify and /settle of a facilitator whose chain is down.
// Whatever the body, the answer is JSON with a verdict: 200 or 400 with a reason, or 503 — never
// another 5xx — and, since nothing can be checked on chain, never a valid payment.
func FuzzHandler(f *testing.F) {
	const chainID = 84532 // has a v1 name, so v1 bodies get past decoding
	key, err := crypto.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	fac, err := facilitator.New(facilitator.Config{Chain: quidtest.DeadChain(), ChainID: chainID, Relayer: key,
		ReceiptTimeout: 50 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	h := fac.Handler()

	// Seeds: well-formed requests of both versions, then damaged ones.
	token := evm.DevToken(chainID)
	extra := x402.Object{}
	extra.SetString("name", token.Name)
	extra.SetString("version", token.Version)
	req := x402.PaymentRequirements{Scheme: "exact", Network: x402.EIP155(chainID), Amount: "10000", Asset: token.Address.Hex(),
		PayTo: common.Address{0x70}.Hex(), MaxTimeoutSeconds: 60, Extra: extra}
	auth := quidtest.Authorization(f, key, req)
	v2, err := x402.EncodeFacilitatorRequest(quidtest.Payload(f, key, token.Domain(), auth, req), req)
	if err != nil {
		f.Fatal(err)
	}
	p1 := quidtest.Payload(f, key, token.Domain(), auth, req)
	p1.X402Version = x402.V1
	v1, err := x402.EncodeFacilitatorRequest(p1, req)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		v2, v1,
		v2[:len(v2)/2],
		bytes.Replace(v2, []byte(`"x402Version":2`), []byte(`"x402Version":1`), 1),
		bytes.Replace(v2, []byte(`"exact"`), []byte(`"upto"`), -1),
		bytes.Replace(v2, []byte(`"maxTimeoutSeconds":60`), []byte(`"maxTimeoutSeconds":9223372036854775807`), 1),
		bytes.Replace(v2, []byte(`"amount":"10000"`), []byte(`"amount":10000`), 1),
		bytes.Replace(v2, []byte(`"accepted":{`), []byte(`"accepted":null,"x":{`), 1),
		[]byte(`{"x402Version":2,"paymentPayload":{"x402Version":2,"accepted":{},"payload":{}},"paymentRequirements":{}}`),
		[]byte(`{"paymentPayload":{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"signature":"0x"}},"paymentRequirements":{"network":"base-sepolia","extra":null}}`),
		[]byte(`{"paymentPayload":{"x402Version":2},"paymentRequirements":null}`),
		[]byte(`null`), []byte(`[]`), []byte(`""`), []byte(`{}`), []byte(``), []byte("\xff\xfe"),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/verify", "/settle"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
			out := rec.Body.Bytes()
			switch rec.Code {
			case http.StatusOK, http.StatusBadRequest, http.StatusServiceUnavailable:
			default:
				t.Fatalf("%s answered %d: %s", path, rec.Code, out)
			}
			if !json.Valid(out) || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s answered %d with non-JSON %q (Content-Type %q)", path, rec.Code, out, rec.Header().Get("Content-Type"))
			}
			var v struct {
				IsValid       *bool       `json:"isValid"`
				InvalidReason x402.Reason `json:"invalidReason"`
				Success       *bool       `json:"success"`
				ErrorReason   x402.Reason `json:"errorReason"`
				Transaction   *string     `json:"transaction"`
				Network       string      `json:"network"`
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("%s answer %s: %v", path, out, err)
			}
			if path == "/verify" {
				if v.IsValid == nil || *v.IsValid || v.InvalidReason == "" {
					t.Fatalf("/verify with the chain down answered %d %s; want isValid false with a reason", rec.Code, out)
				}
				if rec.Code == http.StatusServiceUnavailable && v.InvalidReason != x402.ReasonUnexpectedVerifyError {
					t.Fatalf("/verify 503 with reason %s", v.InvalidReason)
				}
				continue
			}
			if v.Success == nil || *v.Success || v.ErrorReason == "" || v.Transaction == nil || *v.Transaction != "" || (v.Network != "eip155:84532" && v.Network != "base-sepolia") {
				t.Fatalf("/settle with the chain down answered %d %s; want success false with a reason, no transaction, the network", rec.Code, out)
			}
			if rec.Code == http.StatusServiceUnavailable && v.ErrorReason != x402.ReasonUnexpectedSettleError {
				t.Fatalf("/settle 503 with reason %s", v.ErrorReason)
			}
		}
	})
}
