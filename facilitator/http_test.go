package facilitator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

// serve runs h on a loopback server closed when the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// call sends one request and returns the status, headers and body.
func call(t *testing.T, method, url string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// requireJSON checks that an API answer is JSON that must not be cached, and decodes it.
func requireJSON(t *testing.T, h http.Header, body []byte, out any) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
}

func sameKind(a, b x402.SupportedKind) bool {
	return a.X402Version == b.X402Version && a.Scheme == b.Scheme && a.Network == b.Network && len(a.Extra) == len(b.Extra)
}

func TestHTTPSupported(t *testing.T) {
	t.Parallel()
	cases := []struct {
		chainID uint64
		kinds   []x402.SupportedKind
	}{
		{31337, []x402.SupportedKind{{X402Version: 2, Scheme: "exact", Network: "eip155:31337"}}},
		{84532, []x402.SupportedKind{{X402Version: 2, Scheme: "exact", Network: "eip155:84532"}, {X402Version: 1, Scheme: "exact", Network: "base-sepolia"}}},
	}
	for _, tc := range cases {
		t.Run(string(x402.EIP155(tc.chainID)), func(t *testing.T) {
			t.Parallel()
			env := quidtest.NewEnv(t, quidtest.Options{ChainID: tc.chainID})
			url := serve(t, env.Facilitator.Handler())
			status, h, body := call(t, http.MethodGet, url+"/supported", nil)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			var s x402.SupportedResponse
			requireJSON(t, h, body, &s)
			if !slices.EqualFunc(s.Kinds, tc.kinds, sameKind) {
				t.Errorf("kinds %+v, want %+v", s.Kinds, tc.kinds)
			}
			if got := s.Signers["eip155:*"]; len(s.Signers) != 1 || !slices.Equal(got, []string{env.Facilitator.Relayer().Hex()}) {
				t.Errorf("signers %v, want eip155:* = [%s]", s.Signers, env.Facilitator.Relayer())
			}
			var raw map[string]json.RawMessage
			json.Unmarshal(body, &raw)
			if e := strings.TrimSpace(string(raw["extensions"])); !strings.HasPrefix(e, "[") {
				t.Errorf("extensions %s, want an array", e)
			}

			c := facilitator.NewClient(url + "/")
			got, err := c.Supported(context.Background())
			if err != nil || !slices.EqualFunc(got.Kinds, tc.kinds, sameKind) || !slices.Equal(got.Signers["eip155:*"], s.Signers["eip155:*"]) {
				t.Fatalf("Client.Supported: %+v %v", got, err)
			}
		})
	}
}

func TestHTTPHealthz(t *testing.T) {
	t.Parallel()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	url := serve(t, env.Facilitator.Handler()) + "/healthz"
	var health struct {
		OK      bool   `json:"ok"`
		Network string `json:"network"`
		Block   uint64 `json:"block"`
		Relayer string `json:"relayer"`
		Error   string `json:"error"`
	}
	status, h, body := call(t, http.MethodGet, url, nil)
	requireJSON(t, h, body, &health)
	if status != http.StatusOK || !health.OK || health.Network != "eip155:31337" || health.Block == 0 || health.Relayer != env.Facilitator.Relayer().Hex() {
		t.Fatalf("healthy chain: %d %s", status, body)
	}

	chain.FailAll(quidtest.TransportError())
	health.OK = true
	status, h, body = call(t, http.MethodGet, url, nil)
	requireJSON(t, h, body, &health)
	if status != http.StatusServiceUnavailable || health.OK || health.Error == "" {
		t.Fatalf("chain down: %d %s", status, body)
	}
	if strings.Contains(string(body), "127.0.0.1:8545") {
		t.Errorf("health answer leaks the RPC endpoint: %s", body)
	}

	chain.Heal()
	if status, _, body := call(t, http.MethodGet, url, nil); status != http.StatusOK {
		t.Fatalf("chain back: %d %s", status, body)
	}
}

// TestHTTPVerifyAndSettle posts bodies to /verify and /settle. Every answer is JSON with a
// verdict: 200 for a decided payment, 400 for an undecodable request, never a 500.
func TestHTTPVerifyAndSettle(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{ChainID: 84532})
	url := serve(t, env.Facilitator.Handler())
	req := env.Requirements(price, env.Seller.Address)
	v2 := func(p *x402.PaymentPayload, r x402.PaymentRequirements) []byte {
		b, err := x402.EncodeFacilitatorRequest(p, r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A fresh valid payment per request, so /verify and /settle each get an unused one.
	valid := func() []byte { return v2(payment(t, env, req), req) }
	validV1 := func() []byte { return v1Body(t, env, req, "base-sepolia", nil) }
	const max = x402.MaxRequestBytes
	padded := func(n int) func() []byte {
		return func() []byte {
			b := valid()
			return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
		}
	}
	withPayload := func(edit func(m map[string]any)) func() []byte {
		return func() []byte {
			var m map[string]any
			if err := json.Unmarshal(valid(), &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			return mustJSON(t, m)
		}
	}
	wrongValue := func() []byte {
		p, _ := signed(t, env.Buyer.Key, env.Token.Domain(), req, func(a *evm.Authorization) { a.Value = evm.NewAmount(1) })
		return v2(p, req)
	}
	lit := func(s string) func() []byte { return func() []byte { return []byte(s) } }

	cases := []struct {
		name   string
		body   func() []byte
		status int
		reason x402.Reason // "" for a valid payment
	}{
		{"valid v2", valid, http.StatusOK, ""},
		{"valid v1", validV1, http.StatusOK, ""},
		{"valid, exactly MaxRequestBytes", padded(max), http.StatusOK, ""},
		{"invalid payment", wrongValue, http.StatusOK, x402.ReasonExactValueMismatch},
		{"one byte over MaxRequestBytes", padded(max + 1), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"a megabyte", padded(1 << 20), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"truncated JSON", func() []byte { b := valid(); return b[:len(b)/2] }, http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"not JSON", lit("x402Version=2"), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"empty", lit(""), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"null", lit("null"), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"array", lit("[]"), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"paymentPayload null", withPayload(func(m map[string]any) { m["paymentPayload"] = nil }), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"accepted null", withPayload(func(m map[string]any) { m["paymentPayload"].(map[string]any)["accepted"] = nil }), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"payload missing", withPayload(func(m map[string]any) { delete(m["paymentPayload"].(map[string]any), "payload") }), http.StatusBadRequest, x402.ReasonInvalidPayload},
		{"paymentRequirements missing", withPayload(func(m map[string]any) { delete(m, "paymentRequirements") }), http.StatusBadRequest, x402.ReasonInvalidPaymentRequirements},
		{"paymentRequirements a string", withPayload(func(m map[string]any) { m["paymentRequirements"] = "exact" }), http.StatusBadRequest, x402.ReasonInvalidPaymentRequirements},
		{"x402Version 3", withPayload(func(m map[string]any) { m["paymentPayload"].(map[string]any)["x402Version"] = 3 }), http.StatusBadRequest, x402.ReasonInvalidVersion},
		{"v1 network unknown", lit(`{"x402Version":1,"paymentPayload":{"x402Version":1,"scheme":"exact","network":"moon","payload":{}},"paymentRequirements":{"scheme":"exact","network":"moon"}}`), http.StatusBadRequest, x402.ReasonInvalidNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t.Run("verify", func(t *testing.T) {
				status, h, body := call(t, http.MethodPost, url+"/verify", tc.body())
				var v x402.VerifyResponse
				requireJSON(t, h, body, &v)
				if status != tc.status || v.IsValid != (tc.reason == "") || v.InvalidReason != tc.reason {
					t.Fatalf("%d %s; want %d with reason %q", status, body, tc.status, tc.reason)
				}
				if tc.reason == "" && v.Payer != env.Buyer.Address.Hex() {
					t.Errorf("payer %q", v.Payer)
				}
			})
			t.Run("settle", func(t *testing.T) {
				status, h, body := call(t, http.MethodPost, url+"/settle", tc.body())
				var s x402.SettleResponse
				requireJSON(t, h, body, &s)
				if status != tc.status || s.Success != (tc.reason == "") || s.ErrorReason != tc.reason {
					t.Fatalf("%d %s; want %d with reason %q", status, body, tc.status, tc.reason)
				}
				if (s.Network != "eip155:84532" && s.Network != "base-sepolia") || !bytes.Contains(body, []byte(`"transaction":`)) {
					t.Errorf("settle answer %s lacks network or transaction", body)
				}
				if tc.reason == "" {
					requireSettled(t, env, &s, env.Buyer.Address, env.Seller.Address, price)
				} else if s.Transaction != "" {
					t.Errorf("refused settlement names transaction %s", s.Transaction)
				}
			})
		})
	}

	t.Run("wrong method", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ method, path string }{{http.MethodGet, "/verify"}, {http.MethodPut, "/settle"}, {http.MethodDelete, "/verify"}, {http.MethodPost, "/supported"}} {
			req, _ := http.NewRequest(c.method, url+c.path, strings.NewReader(string(valid())))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
				t.Errorf("%s %s: %d, Allow %q; want 405 with Allow", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	})
}

// TestHTTPChainDown: a facilitator that cannot reach its chain answers 503 with a JSON verdict
// that decides nothing, and does not leak the endpoint's address.
func TestHTTPChainDown(t *testing.T) {
	t.Parallel()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	url := serve(t, env.Facilitator.Handler())
	req := env.Requirements(price, env.Seller.Address)
	p := payment(t, env, req)
	body, err := x402.EncodeFacilitatorRequest(p, req)
	if err != nil {
		t.Fatal(err)
	}
	chain.FailAll(quidtest.TransportError())
	for _, c := range []struct {
		path   string
		reason x402.Reason
	}{{"/verify", x402.ReasonUnexpectedVerifyError}, {"/settle", x402.ReasonUnexpectedSettleError}} {
		status, h, b := call(t, http.MethodPost, url+c.path, body)
		var m map[string]any
		requireJSON(t, h, b, &m)
		if status != http.StatusServiceUnavailable || m["isValid"] == true || m["success"] == true {
			t.Fatalf("%s: %d %s; want 503", c.path, status, b)
		}
		if reason := m["invalidReason"]; c.path == "/settle" {
			reason = m["errorReason"]
			if reason != string(c.reason) {
				t.Errorf("%s reason %v, want %s", c.path, reason, c.reason)
			}
		} else if reason != string(c.reason) {
			t.Errorf("%s reason %v, want %s", c.path, reason, c.reason)
		}
		if strings.Contains(string(b), "8545") {
			t.Errorf("%s leaks the RPC endpoint: %s", c.path, b)
		}
	}
	// Nothing was decided: once the chain is back, the same payment settles.
	chain.Heal()
	status, h, b := call(t, http.MethodPost, url+"/settle", body)
	var s x402.SettleResponse
	requireJSON(t, h, b, &s)
	if status != http.StatusOK {
		t.Fatalf("after the outage: %d %s", status, b)
	}
	requireSettled(t, env, &s, env.Buyer.Address, env.Seller.Address, price)
}

// TestClient uses a remote facilitator through Client exactly as the in-process one.
func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := quidtest.NewEnv(t, quidtest.Options{ChainID: 84532})
	c := facilitator.NewClient(serve(t, env.Facilitator.Handler()))
	req := env.Requirements(price, env.Seller.Address)
	before := snapshot(t, env)

	t.Run("v2", func(t *testing.T) {
		p := payment(t, env, req)
		v, err := c.Verify(ctx, p, req)
		if err != nil || !v.IsValid || v.Payer != env.Buyer.Address.Hex() {
			t.Fatalf("Verify: %+v %v", v, err)
		}
		s, err := c.Settle(ctx, p, req)
		if err != nil {
			t.Fatal(err)
		}
		requireSettled(t, env, s, env.Buyer.Address, env.Seller.Address, price)
		first := s.Transaction
		s, err = c.Settle(ctx, p, req)
		requireFailure(t, s, err, x402.ReasonExactNonceUsed, first)
	})
	t.Run("v1", func(t *testing.T) {
		p, r := decodeV1(t, env, req, nil)
		v, err := c.Verify(ctx, p, r)
		if err != nil || !v.IsValid {
			t.Fatalf("Verify: %+v %v", v, err)
		}
		s, err := c.Settle(ctx, p, r)
		if err != nil {
			t.Fatal(err)
		}
		requireSettled(t, env, s, env.Buyer.Address, env.Seller.Address, price)
	})
	t.Run("invalid payment", func(t *testing.T) {
		p, _ := signed(t, env.Buyer.Key, env.Token.Domain(), req, func(a *evm.Authorization) { a.To = common.Address{1} })
		v, err := c.Verify(ctx, p, req)
		if err != nil || v.IsValid || v.InvalidReason != x402.ReasonExactRecipientMismatch {
			t.Fatalf("Verify: %+v %v", v, err)
		}
		s, err := c.Settle(ctx, p, req)
		requireFailure(t, s, err, x402.ReasonExactRecipientMismatch, "")
	})
	t.Run("undecodable request", func(t *testing.T) {
		// The server answers 400 with a verdict, which the client returns as one.
		p := payment(t, env, req)
		p.Payload = json.RawMessage(`null`)
		v, err := c.Verify(ctx, p, req)
		if err != nil || v.IsValid || v.InvalidReason != x402.ReasonInvalidPayload {
			t.Fatalf("Verify: %+v %v", v, err)
		}
	})
	requireMoved(t, env, before, 2)
}

// TestClientUnavailable: whatever keeps the client from a verdict — an error status, a server
// that is gone, an answer that is not JSON, a timeout — is ErrUnavailable, never a verdict.
func TestClientUnavailable(t *testing.T) {
	t.Parallel()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	chain.FailAll(quidtest.TransportError())
	req := env.Requirements(price, env.Seller.Address)
	p := payment(t, env, req)
	answer := func(status int, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		})
	}
	gone := httptest.NewServer(answer(200, `{}`))
	gone.Close()
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	cases := []struct {
		name   string
		url    string
		client *http.Client
	}{
		{"facilitator's chain down (503)", serve(t, env.Facilitator.Handler()), nil},
		{"500 with a verdict-shaped body", serve(t, answer(500, `{"isValid":true,"success":true}`)), nil},
		{"502 from a proxy", serve(t, answer(502, `<html>bad gateway</html>`)), nil},
		{"404", serve(t, http.NotFoundHandler()), nil},
		{"200 not JSON", serve(t, answer(200, `OK`)), nil},
		{"200 truncated JSON", serve(t, answer(200, `{"isValid":tr`)), nil},
		{"connection refused", gone.URL, nil},
		{"timeout", serve(t, slow), &http.Client{Timeout: 200 * time.Millisecond}},
	}
	t.Cleanup(func() { close(release) }) // before the servers close, which waits for handlers
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := facilitator.NewClient(tc.url)
			if tc.client != nil {
				c.HTTP = tc.client
			}
			v, err := c.Verify(context.Background(), p, req)
			if !errors.Is(err, facilitator.ErrUnavailable) || v != nil {
				t.Errorf("Verify: %+v, %v; want ErrUnavailable", v, err)
			}
			s, err := c.Settle(context.Background(), p, req)
			if !errors.Is(err, facilitator.ErrUnavailable) || s != nil {
				t.Errorf("Settle: %+v, %v; want ErrUnavailable", s, err)
			}
			sup, err := c.Supported(context.Background())
			if tc.name != "facilitator's chain down (503)" && (!errors.Is(err, facilitator.ErrUnavailable) || sup != nil) {
				t.Errorf("Supported: %+v, %v; want ErrUnavailable", sup, err)
			}
		})
	}
}
