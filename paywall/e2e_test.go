package paywall_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

const price = 10_000 // $0.01 of a 6-decimal token

// seller is a paid API on a devnet: one route at $0.01 whose handler counts its runs, the only
// side effect a test needs to prove nothing ran unpaid.
type seller struct {
	*quidtest.Env
	srv     *httptest.Server
	runs    atomic.Int64
	handler func(w http.ResponseWriter, r *http.Request)
}

func newSeller(t *testing.T, mode paywall.SettleMode, fac paywall.Facilitator) *seller {
	t.Helper()
	s := &seller{Env: quidtest.NewEnv(t, quidtest.Options{})}
	if fac == nil {
		fac = s.Facilitator
	}
	mw, err := paywall.Middleware(paywall.Config{
		Facilitator: fac,
		ChainID:     s.Chain.ChainID(),
		PayTo:       s.Seller.Address,
		Assets:      evm.NewRegistry(s.Token),
	}, paywall.Route{Price: "$0.01", Description: "weather", MimeType: "application/json", Settle: mode})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.runs.Add(1)
		if s.handler != nil {
			s.handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"sky":"clear"}`)
	})))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *seller) wallet(t *testing.T, max string) *wallet.Wallet {
	t.Helper()
	w, err := wallet.New(wallet.Config{Key: s.Buyer.Key, Assets: evm.NewRegistry(s.Token), Max: max})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// challenge fetches the route unpaid and returns the requirements it asks for.
func (s *seller) challenge(t *testing.T) x402.PaymentRequirements {
	t.Helper()
	resp, err := http.Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatal(err)
	}
	return pr.Accepts[0]
}

// get sends one request carrying a payment header and returns the response with its body read.
func (s *seller) get(t *testing.T, header, value string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL, nil)
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func requireRefusal(t *testing.T, resp *http.Response, body string, reason x402.Reason) {
	t.Helper()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402; body %s", resp.StatusCode, body)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		t.Fatalf("PAYMENT-REQUIRED: %v", err)
	}
	if pr.Error != string(reason) {
		t.Fatalf("402 error %q, want %q", pr.Error, reason)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q on a 402, want no-store", got)
	}
}

func TestPaidRequestIsSettledOnChainThenServed(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	buyerBefore, sellerBefore := s.Balance(t, s.Buyer.Address), s.Balance(t, s.Seller.Address)

	resp, err := s.wallet(t, "0.05").Client().Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"sky":"clear"}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "private" {
		t.Errorf("Cache-Control %q on a paid response, want private", got)
	}
	settle, ok := wallet.Settlement(resp)
	if !ok || !settle.Success || settle.Payer != s.Buyer.Address.Hex() || settle.Network != x402.EIP155(s.Chain.ChainID()) {
		t.Fatalf("PAYMENT-RESPONSE %+v", settle)
	}
	receipt, err := s.Chain.Client().TransactionReceipt(context.Background(), common.HexToHash(settle.Transaction))
	if err != nil || receipt.Status != 1 {
		t.Fatalf("settlement receipt %v, %v", receipt, err)
	}
	wantBuyer, _ := buyerBefore.Sub(evm.NewAmount(price))
	wantSeller, _ := sellerBefore.Add(evm.NewAmount(price))
	if got := s.Balance(t, s.Buyer.Address); got.Cmp(wantBuyer) != 0 {
		t.Errorf("buyer balance %s, want %s", got, wantBuyer)
	}
	if got := s.Balance(t, s.Seller.Address); got.Cmp(wantSeller) != 0 {
		t.Errorf("seller balance %s, want %s", got, wantSeller)
	}
	if n := s.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

func TestUnpaidRequestGets402WithTerms(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	resp, body := s.get(t, "", "")
	requireRefusal(t, resp, body, x402.ReasonPaymentRequired)
	header, _ := base64.StdEncoding.DecodeString(resp.Header.Get(x402.HeaderPaymentRequired))
	if string(header) != body {
		t.Errorf("body does not mirror PAYMENT-REQUIRED:\nheader %s\nbody   %s", header, body)
	}
	req := s.challenge(t)
	want := s.Requirements(price, s.Seller.Address)
	if !x402.Match(x402.V2, want, req) || req.MaxTimeoutSeconds != 60 {
		t.Errorf("requirements %+v, want %+v", req, want)
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "PAYMENT-REQUIRED") {
		t.Errorf("payment headers not exposed to browsers: %q", resp.Header.Get("Access-Control-Expose-Headers"))
	}
	if n := s.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times for unpaid requests", n)
	}
}

func TestReplayedPaymentIsServedOnce(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	req := s.challenge(t)
	header := quidtest.Header(t, quidtest.Payload(t, s.Buyer.Key, s.Token.Domain(), quidtest.Authorization(t, s.Buyer.Key, req), req))

	if resp, body := s.get(t, x402.HeaderPaymentSignature, header); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d %s", resp.StatusCode, body)
	}
	resp, body := s.get(t, x402.HeaderPaymentSignature, header)
	requireRefusal(t, resp, body, x402.ReasonExactNonceUsed)
	if n := s.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

func TestConcurrentCopiesOfOnePaymentServeOnce(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	req := s.challenge(t)
	header := quidtest.Header(t, quidtest.Payload(t, s.Buyer.Key, s.Token.Domain(), quidtest.Authorization(t, s.Buyer.Key, req), req))
	buyerBefore := s.Balance(t, s.Buyer.Address)

	const copies = 50
	var served, refused atomic.Int64
	var wg sync.WaitGroup
	for range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := http.NewRequest(http.MethodGet, s.srv.URL, nil)
			r.Header.Set(x402.HeaderPaymentSignature, header)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				served.Add(1)
			case http.StatusPaymentRequired:
				refused.Add(1)
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if served.Load() != 1 || refused.Load() != copies-1 {
		t.Fatalf("served %d, refused %d; want 1 and %d", served.Load(), refused.Load(), copies-1)
	}
	if n := s.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	want, _ := buyerBefore.Sub(evm.NewAmount(price))
	if got := s.Balance(t, s.Buyer.Address); got.Cmp(want) != 0 {
		t.Errorf("buyer balance %s, want %s (charged once)", got, want)
	}
}

func TestRefusedPayments(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	req := s.challenge(t)
	key := s.Buyer.Key
	domain := s.Token.Domain()
	sign := func(mutate func(a *evm.Authorization, d *evm.Domain, r *x402.PaymentRequirements)) string {
		a := quidtest.Authorization(t, key, req)
		d, r := domain, req
		r.Extra = x402.Object{"name": req.Extra["name"], "version": req.Extra["version"]}
		mutate(&a, &d, &r)
		return quidtest.Header(t, quidtest.Payload(t, key, d, a, r))
	}
	now := time.Now()
	highS := func() string {
		a := quidtest.Authorization(t, key, req)
		sig, _ := evm.SignAuthorization(key, domain, &a)
		n := crypto.S256().Params().N
		sv := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64]))
		sv.FillBytes(sig[32:64])
		sig[64] ^= 1 // 27 <-> 28
		return quidtest.Header(t, quidtest.RawPayload(t, a.Wire(), sig.String(), req))
	}()
	stranger, _ := crypto.GenerateKey()
	broke := func() string {
		a := quidtest.Authorization(t, stranger, req)
		return quidtest.Header(t, quidtest.Payload(t, stranger, domain, a, req))
	}()
	cancelled := func() string {
		a := quidtest.Authorization(t, key, req)
		s.Cancel(t, key, a)
		return quidtest.Header(t, quidtest.Payload(t, key, domain, a, req))
	}()

	cases := []struct {
		name   string
		header string
		reason x402.Reason
	}{
		{"amount raised in accepted", sign(func(a *evm.Authorization, _ *evm.Domain, r *x402.PaymentRequirements) {
			r.Amount = "20000"
		}), x402.ReasonNoMatch},
		{"signed value below price", sign(func(a *evm.Authorization, _ *evm.Domain, _ *x402.PaymentRequirements) {
			a.Value = evm.NewAmount(price - 1)
		}), x402.ReasonExactValueMismatch},
		{"payTo redirected", sign(func(a *evm.Authorization, _ *evm.Domain, _ *x402.PaymentRequirements) {
			a.To = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
		}), x402.ReasonExactRecipientMismatch},
		{"asset changed in accepted", sign(func(_ *evm.Authorization, _ *evm.Domain, r *x402.PaymentRequirements) {
			r.Asset = evm.USDCBase.Address.Hex()
		}), x402.ReasonNoMatch},
		{"network changed in accepted", sign(func(_ *evm.Authorization, _ *evm.Domain, r *x402.PaymentRequirements) {
			r.Network = "eip155:8453"
		}), x402.ReasonNoMatch},
		{"signed for another chain id", sign(func(_ *evm.Authorization, d *evm.Domain, _ *x402.PaymentRequirements) {
			d.ChainID = 8453
		}), x402.ReasonExactSignature},
		{"signed for another token", sign(func(_ *evm.Authorization, d *evm.Domain, _ *x402.PaymentRequirements) {
			d.VerifyingContract = evm.USDCBase.Address
		}), x402.ReasonExactSignature},
		{"expired", sign(func(a *evm.Authorization, _ *evm.Domain, _ *x402.PaymentRequirements) {
			a.ValidBefore = uint64(now.Add(-time.Minute).Unix())
		}), x402.ReasonExactValidBefore},
		{"expires within the settlement margin", sign(func(a *evm.Authorization, _ *evm.Domain, _ *x402.PaymentRequirements) {
			a.ValidBefore = uint64(now.Add(2 * time.Second).Unix())
		}), x402.ReasonExactValidBefore},
		{"not yet valid", sign(func(a *evm.Authorization, _ *evm.Domain, _ *x402.PaymentRequirements) {
			a.ValidAfter = uint64(now.Add(time.Hour).Unix())
		}), x402.ReasonExactValidAfter},
		{"valid far longer than maxTimeoutSeconds", sign(func(a *evm.Authorization, _ *evm.Domain, _ *x402.PaymentRequirements) {
			a.ValidBefore = uint64(now.Add(24 * time.Hour).Unix())
		}), x402.ReasonExactValidBefore},
		{"high-s signature", highS, x402.ReasonExactSignature},
		{"payer without funds", broke, x402.ReasonExactInsufficientBalance},
		{"authorization cancelled on chain", cancelled, x402.ReasonExactNonceUsed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, x402.HeaderPaymentSignature, tc.header)
			requireRefusal(t, resp, body, tc.reason)
		})
	}
	if n := s.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times for refused payments", n)
	}
}

func TestMalformedPaymentHeadersAreTreatedAsUnpaid(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name, header, value string
		reason              x402.Reason
	}{
		{"not base64", x402.HeaderPaymentSignature, "%%%not-base64%%%", x402.ReasonInvalidPayload},
		{"url-safe base64", x402.HeaderPaymentSignature, base64.URLEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":{},"payload":{"a":"~~~~>>>>"}}`)), x402.ReasonInvalidPayload},
		{"base64 of non-JSON", x402.HeaderPaymentSignature, b64("hello"), x402.ReasonInvalidPayload},
		{"JSON null", x402.HeaderPaymentSignature, b64("null"), x402.ReasonInvalidPayload},
		{"accepted null", x402.HeaderPaymentSignature, b64(`{"x402Version":2,"accepted":null,"payload":{}}`), x402.ReasonInvalidPayload},
		{"payload missing", x402.HeaderPaymentSignature, b64(`{"x402Version":2,"accepted":{"scheme":"exact"}}`), x402.ReasonInvalidPayload},
		{"wrong version", x402.HeaderPaymentSignature, b64(`{"x402Version":3,"accepted":{},"payload":{}}`), x402.ReasonInvalidVersion},
		{"huge header", x402.HeaderPaymentSignature, strings.Repeat("A", x402.MaxHeaderBytes+4), x402.ReasonInvalidPayload},
		{"v1 garbage", x402.HeaderPaymentV1, "!!", x402.ReasonInvalidPayload},
		{"v1 unknown network", x402.HeaderPaymentV1, b64(`{"x402Version":1,"scheme":"exact","network":"moon","payload":{}}`), x402.ReasonInvalidNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, tc.header, tc.value)
			requireRefusal(t, resp, body, tc.reason)
		})
	}
	if n := s.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times", n)
	}
}

func TestHandlerFailureIsNotCharged(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	fail := atomic.Bool{}
	fail.Store(true)
	s.handler = func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "upstream broke", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	}
	req := s.challenge(t)
	header := quidtest.Header(t, quidtest.Payload(t, s.Buyer.Key, s.Token.Domain(), quidtest.Authorization(t, s.Buyer.Key, req), req))
	before := s.Balance(t, s.Buyer.Address)
	resp, body := s.get(t, x402.HeaderPaymentSignature, header)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
		t.Fatalf("got %d %q with PAYMENT-RESPONSE %q; want the handler's 502 and no settlement", resp.StatusCode, body, resp.Header.Get(x402.HeaderPaymentResponse))
	}
	if got := s.Balance(t, s.Buyer.Address); got.Cmp(before) != 0 {
		t.Fatalf("buyer charged for a failed request: %s -> %s", before, got)
	}
	// The authorization moved no value, so it can still buy the resource.
	fail.Store(false)
	if resp, body := s.get(t, x402.HeaderPaymentSignature, header); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry with the unspent authorization: %d %s", resp.StatusCode, body)
	}
}

func TestFailedSettlementWithholdsTheResponse(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	req := s.challenge(t)
	auth := quidtest.Authorization(t, s.Buyer.Key, req)
	header := quidtest.Header(t, quidtest.Payload(t, s.Buyer.Key, s.Token.Domain(), auth, req))
	// The payer cancels its authorization while the handler runs: verification passed, and
	// settlement must now fail without the handler's output reaching the payer.
	s.handler = func(w http.ResponseWriter, r *http.Request) {
		s.Cancel(t, s.Buyer.Key, auth)
		io.WriteString(w, "secret")
	}
	resp, body := s.get(t, x402.HeaderPaymentSignature, header)
	if resp.StatusCode != http.StatusPaymentRequired || strings.Contains(body, "secret") {
		t.Fatalf("got %d %q; want 402 without the handler's body", resp.StatusCode, body)
	}
	settle, ok := wallet.Settlement(resp)
	if !ok || settle.Success || settle.ErrorReason != x402.ReasonExactNonceUsed {
		t.Fatalf("PAYMENT-RESPONSE %+v", settle)
	}
}

func TestSettleBeforeRunsHandlerOnlyAfterPayment(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleBefore, nil)
	var balanceAtHandler evm.Amount
	s.handler = func(w http.ResponseWriter, r *http.Request) {
		balanceAtHandler = s.Balance(t, s.Seller.Address)
		io.WriteString(w, "done")
	}
	before := s.Balance(t, s.Seller.Address)
	resp, err := s.wallet(t, "0.05").Client().Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want, _ := before.Add(evm.NewAmount(price))
	if resp.StatusCode != http.StatusOK || balanceAtHandler.Cmp(want) != 0 {
		t.Fatalf("status %d; seller balance when the handler ran %s, want %s (already paid)", resp.StatusCode, balanceAtHandler, want)
	}
}

func TestUnreachableChainIs503AndRunsNothing(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	dead, err := ethclient.Dial("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	f, err := facilitator.New(facilitator.Config{Chain: dead, ChainID: s.Chain.ChainID(), Relayer: s.Chain.Accounts()[quidtest.Relayer].Key})
	if err != nil {
		t.Fatal(err)
	}
	down := newSellerOn(t, s, f)
	req := s.challenge(t)
	header := quidtest.Header(t, quidtest.Payload(t, s.Buyer.Key, s.Token.Domain(), quidtest.Authorization(t, s.Buyer.Key, req), req))
	resp, err := http.DefaultClient.Do(withHeader(down.URL, header))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, want 503 with Retry-After", resp.StatusCode)
	}
	if n := s.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times", n)
	}
	// Nothing was decided, so the same payment still works once the chain is back.
	if resp, body := s.get(t, x402.HeaderPaymentSignature, header); resp.StatusCode != http.StatusOK {
		t.Fatalf("after outage: %d %s", resp.StatusCode, body)
	}
}

// newSellerOn serves s's route through another facilitator, sharing s's handler.
func newSellerOn(t *testing.T, s *seller, fac paywall.Facilitator) *httptest.Server {
	mw, err := paywall.Middleware(paywall.Config{Facilitator: fac, ChainID: s.Chain.ChainID(), PayTo: s.Seller.Address, Assets: evm.NewRegistry(s.Token)},
		paywall.Route{Price: "$0.01", Description: "weather", MimeType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.runs.Add(1) })))
	t.Cleanup(srv.Close)
	return srv
}

func withHeader(url, header string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, url, nil)
	r.Header.Set(x402.HeaderPaymentSignature, header)
	return r
}

func TestWalletRefusesPricesAboveItsMaximum(t *testing.T) {
	t.Parallel()
	s := newSeller(t, paywall.SettleAfter, nil)
	before := s.Balance(t, s.Buyer.Address)
	_, err := s.wallet(t, "0.009").Client().Get(s.srv.URL)
	if !errors.Is(err, wallet.ErrOverMax) {
		t.Fatalf("err %v, want ErrOverMax", err)
	}
	if got := s.Balance(t, s.Buyer.Address); got.Cmp(before) != 0 {
		t.Fatal("buyer charged above its maximum")
	}
}

func TestPaymentThroughRemoteFacilitator(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	api := httptest.NewServer(env.Facilitator.Handler())
	t.Cleanup(api.Close)
	mw, err := paywall.Middleware(paywall.Config{Facilitator: facilitator.NewClient(api.URL), ChainID: env.Chain.ChainID(), PayTo: env.Seller.Address, Assets: evm.NewRegistry(env.Token)},
		paywall.Route{Price: "$0.01"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "paid") })))
	t.Cleanup(srv.Close)
	w, _ := wallet.New(wallet.Config{Key: env.Buyer.Key, Assets: evm.NewRegistry(env.Token), Max: "0.01"})
	resp, err := w.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st, ok := wallet.Settlement(resp)
	if resp.StatusCode != http.StatusOK || string(body) != "paid" || !ok || !st.Success {
		t.Fatalf("got %d %q %+v", resp.StatusCode, body, st)
	}
}
