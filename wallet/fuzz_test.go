package wallet_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// fuzzSeller is a RoundTripper standing in for a server: unpaid requests get a 402 carrying
// the fuzzed terms (as the PAYMENT-REQUIRED header, or a v1 body); paid ones are recorded.
type fuzzSeller struct {
	header, body string
	mu           sync.Mutex
	paid         []string
}

func (s *fuzzSeller) RoundTrip(r *http.Request) (*http.Response, error) {
	h := r.Header.Get(x402.HeaderPaymentSignature)
	if h == "" {
		h = r.Header.Get(x402.HeaderPaymentV1)
	}
	resp := &http.Response{StatusCode: http.StatusPaymentRequired, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(s.body)), Request: r}
	if h != "" {
		s.mu.Lock()
		s.paid = append(s.paid, h)
		s.mu.Unlock()
		resp.StatusCode, resp.Body = http.StatusOK, io.NopCloser(strings.NewReader("ok"))
		return resp, nil
	}
	if s.header != "" {
		resp.Header.Set(x402.HeaderPaymentRequired, base64.StdEncoding.EncodeToString([]byte(s.header)))
	}
	return resp, nil
}

// FuzzWalletOn402 feeds the wallet arbitrary 402 terms. Whatever the server sends, the wallet
// never panics, pays at most once, never more than its maximum in a trusted asset's own
// decimals, and refuses with an error rather than a partial effect.
func FuzzWalletOn402(f *testing.F) {
	tok := token.Address.Hex()
	f.Add(`{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:31337","amount":"10000","asset":"`+tok+`","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":60,"extra":{"name":"Quid Test USD","version":"2"}}]}`, "")
	f.Add(`{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:31337","amount":"1000000","asset":"`+tok+`","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":60,"extra":{"decimals":18}}]}`, "")
	f.Add(`{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:31337","amount":"115792089237316195423570985008687907853269984665640564039457584007913129639936","asset":"`+tok+`","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":-1}]}`, "")
	f.Add("", `{"x402Version":1,"accepts":[{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"10000","asset":"`+tok+`","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","resource":"http://x/","maxTimeoutSeconds":60}]}`)
	f.Add("{", "")
	f.Add(`{"x402Version":2,"accepts":null}`, "not json")
	f.Add(`{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:31337","amount":"-5","asset":"0x","payTo":""}]}`, "")
	key, _ := crypto.GenerateKey()
	p, err := wallet.ParsePolicy([]byte("max_payment: \"0.05\"\nbudgets: {day: \"1\"}\n"))
	if err != nil {
		f.Fatal(err)
	}
	max := evm.NewAmount(50_000)
	f.Fuzz(func(t *testing.T, header, body string) {
		s := &fuzzSeller{header: header, body: body}
		w, err := wallet.New(wallet.Config{Key: key, Assets: evm.NewRegistry(token), Policy: p, Base: s})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://seller.test/r", nil)
		resp, err := w.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if len(s.paid) > 1 {
			t.Fatalf("paid %d times", len(s.paid))
		}
		if len(s.paid) == 1 {
			if err != nil {
				t.Fatalf("paid, yet returned %v", err)
			}
			var a evm.Authorization
			if pl, derr := x402.DecodePaymentSignature(s.paid[0]); derr == nil {
				ex, _ := pl.ExactEVM()
				a, _ = evm.ParseAuthorization(ex.Authorization)
			} else {
				v1, derr := x402.DecodeXPayment(s.paid[0])
				if derr != nil {
					t.Fatalf("an undecodable payment was sent: %v", derr)
				}
				ex, _ := v1.ExactEVM()
				a, _ = evm.ParseAuthorization(ex.Authorization)
			}
			if a.Value.Cmp(max) > 0 || a.Value.IsZero() {
				t.Fatalf("paid %s, above the maximum", a.Value)
			}
		}
		if err != nil && errors.Is(err, wallet.ErrApprovalPending) {
			t.Fatal("no approval rule is configured")
		}
	})
}
