package wallet_test

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

var (
	token = evm.DevToken(31337)
	payTo = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
)

func requirements(amount string, asset common.Address, network x402.Network) x402.PaymentRequirements {
	extra := x402.Object{}
	extra.SetString("name", token.Name)
	extra.SetString("version", token.Version)
	return x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: network, Amount: amount, Asset: asset.Hex(),
		PayTo: payTo.Hex(), MaxTimeoutSeconds: 60, Extra: extra}
}

// seller is a hand-written fake of a paid endpoint: it answers 402 with accepts until it sees a
// payment header, then answers with next (one answer per paid request), recording every
// payment header it received.
type seller struct {
	next []func(w http.ResponseWriter)
	mu   sync.Mutex
	paid []string
	srv  *httptest.Server
}

func newSeller(t *testing.T, accepts []x402.PaymentRequirements, answers ...func(w http.ResponseWriter)) *seller {
	s := &seller{next: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get(x402.HeaderPaymentSignature)
		if h == "" {
			pr := x402.PaymentRequired{X402Version: x402.V2, Error: "Payment required", Resource: &x402.ResourceInfo{URL: "http://" + r.Host + r.URL.Path}, Accepts: accepts}
			v, _ := x402.EncodeHeader(pr)
			w.Header().Set(x402.HeaderPaymentRequired, v)
			w.WriteHeader(http.StatusPaymentRequired)
			return
		}
		s.mu.Lock()
		s.paid = append(s.paid, h)
		n := len(s.paid)
		s.mu.Unlock()
		if n <= len(s.next) {
			s.next[n-1](w)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *seller) payments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paid...)
}

func settleHeader(w http.ResponseWriter, resp x402.SettleResponse) {
	v, _ := x402.EncodeHeader(resp)
	w.Header().Set(x402.HeaderPaymentResponse, v)
}

func newWallet(t *testing.T, key *ecdsa.PrivateKey, max string) *wallet.Wallet {
	t.Helper()
	w, err := wallet.New(wallet.Config{Key: key, Assets: evm.NewRegistry(token), Max: max, PendingWait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func decodePayment(t *testing.T, h string) (*x402.PaymentPayload, evm.Authorization, evm.Signature) {
	t.Helper()
	p, err := x402.DecodePaymentSignature(h)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := p.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	a, err := evm.ParseAuthorization(ex.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := evm.ParseSignature(ex.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return p, a, sig
}

func TestWalletPaysTheCheapestPayableOptionOnce(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	unknownAsset := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	s := newSeller(t, []x402.PaymentRequirements{
		requirements("50000", token.Address, "eip155:31337"),
		requirements("1", unknownAsset, "eip155:31337"), // cheapest, but not a trusted asset
		requirements("10000", token.Address, "eip155:31337"),
		requirements("5000", token.Address, "eip155:8453"), // a chain where the token is unknown
	})
	resp, err := newWallet(t, key, "0.05").Client().Get(s.srv.URL + "/r")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	paid := s.payments()
	if resp.StatusCode != http.StatusOK || len(paid) != 1 {
		t.Fatalf("status %d after %d payments", resp.StatusCode, len(paid))
	}
	p, a, sig := decodePayment(t, paid[0])
	if p.Accepted.Amount != "10000" || a.Value.String() != "10000" || a.To != payTo || a.From != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("paid %+v with %+v", p.Accepted, a)
	}
	if p.Resource == nil || !strings.HasSuffix(p.Resource.URL, "/r") {
		t.Errorf("resource not copied from the 402: %+v", p.Resource)
	}
	// Signed under the trusted domain, for at most maxTimeoutSeconds, with a fresh nonce.
	if signer, err := evm.Recover(a.Digest(token.Domain()), sig); err != nil || signer != a.From {
		t.Fatalf("signature does not verify under the registry's domain: %v", err)
	}
	if life := time.Until(time.Unix(int64(a.ValidBefore), 0)); life > 61*time.Second || life < 50*time.Second {
		t.Errorf("authorization valid for %s, want about the 60 s the seller asked", life)
	}
}

func TestWalletRefusesWhatItShouldNotPay(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	cases := []struct {
		name    string
		accepts []x402.PaymentRequirements
		max     string
		want    error
	}{
		{"price above the maximum", []x402.PaymentRequirements{requirements("60000", token.Address, "eip155:31337")}, "0.05", wallet.ErrOverMax},
		{"unknown asset", []x402.PaymentRequirements{requirements("1", common.HexToAddress("0xbad"), "eip155:31337")}, "0.05", wallet.ErrNoPayableOption},
		{"unknown chain", []x402.PaymentRequirements{requirements("1", token.Address, "eip155:1")}, "0.05", wallet.ErrNoPayableOption},
		{"zero amount", []x402.PaymentRequirements{requirements("0", token.Address, "eip155:31337")}, "0.05", wallet.ErrNoPayableOption},
		{"malformed amount", []x402.PaymentRequirements{requirements("1e6", token.Address, "eip155:31337")}, "0.05", wallet.ErrNoPayableOption},
		{"other scheme", []x402.PaymentRequirements{func() x402.PaymentRequirements {
			r := requirements("1", token.Address, "eip155:31337")
			r.Scheme = "upto"
			return r
		}()}, "0.05", wallet.ErrNoPayableOption},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSeller(t, tc.accepts)
			_, err := newWallet(t, key, tc.max).Client().Get(s.srv.URL)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if n := len(s.payments()); n != 0 {
				t.Fatalf("%d payments sent", n)
			}
		})
	}
}

func TestWalletRepresentsTheSamePaymentWhileSettlementIsPending(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	pending := func(w http.ResponseWriter) {
		settleHeader(w, x402.SettleResponse{ErrorReason: x402.ReasonSettlementPending, Transaction: "0xabc", Network: "eip155:31337"})
		w.WriteHeader(http.StatusPaymentRequired)
	}
	unavailable := func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }
	s := newSeller(t, []x402.PaymentRequirements{requirements("10000", token.Address, "eip155:31337")}, pending, unavailable, pending)
	resp, err := newWallet(t, key, "0.05").Client().Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	paid := s.payments()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" || len(paid) != 4 {
		t.Fatalf("status %d %q after %d presentations", resp.StatusCode, body, len(paid))
	}
	for i, h := range paid {
		if h != paid[0] {
			t.Fatalf("presentation %d carried a different payment: the wallet signed twice", i)
		}
	}
}

func TestWalletDoesNotPayAgainWhenThePaidRetryIsRefused(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	refused := func(w http.ResponseWriter) {
		settleHeader(w, x402.SettleResponse{ErrorReason: x402.ReasonExactNonceUsed, Network: "eip155:31337"})
		w.WriteHeader(http.StatusPaymentRequired)
	}
	s := newSeller(t, []x402.PaymentRequirements{requirements("10000", token.Address, "eip155:31337")}, refused)
	var record []wallet.Payment
	w, _ := wallet.New(wallet.Config{Key: key, Assets: evm.NewRegistry(token), Max: "0.05",
		OnPayment: func(p wallet.Payment) { record = append(record, p) }})
	resp, err := w.Client().Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired || len(s.payments()) != 1 {
		t.Fatalf("status %d after %d payments; want the refusal after exactly one", resp.StatusCode, len(s.payments()))
	}
	if len(record) != 1 || record[0].Settled || record[0].Reason != string(x402.ReasonExactNonceUsed) {
		t.Fatalf("OnPayment saw %+v", record)
	}
}

func TestWalletKeepsTheRequestBodyForThePaidRetry(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if r.Header.Get(x402.HeaderPaymentSignature) == "" {
			v, _ := x402.EncodeHeader(x402.PaymentRequired{X402Version: 2, Accepts: []x402.PaymentRequirements{requirements("1", token.Address, "eip155:31337")}})
			w.Header().Set(x402.HeaderPaymentRequired, v)
			w.WriteHeader(http.StatusPaymentRequired)
		}
	}))
	defer srv.Close()
	resp, err := newWallet(t, key, "0.01").Client().Post(srv.URL, "text/plain", strings.NewReader("summarize this"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(bodies) != 2 || bodies[0] != "summarize this" || bodies[1] != "summarize this" {
		t.Fatalf("bodies %q", bodies)
	}
}

func TestLoadKeyFile(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	hexKey := fmt.Sprintf("%x", crypto.FromECDSA(key))
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), mode)
		os.Chmod(p, mode)
		return p
	}
	cases := []struct {
		name string
		path string
		err  error
		bad  bool
	}{
		{"owner only", write("ok", hexKey+"\n", 0o600), nil, false},
		{"with 0x and spaces", write("ox", "  0x"+hexKey+"  \n", 0o400), nil, false},
		{"group readable", write("g", hexKey, 0o640), wallet.ErrKeyFilePermissions, true},
		{"world readable", write("w", hexKey, 0o604), wallet.ErrKeyFilePermissions, true},
		{"not hex", write("nothex", "zz"+hexKey[2:], 0o600), nil, true},
		{"too short", write("short", hexKey[:10], 0o600), nil, true},
		{"missing", filepath.Join(dir, "nope"), os.ErrNotExist, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wallet.LoadKeyFile(tc.path)
			if tc.bad != (err != nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("err %v", err)
			}
			if err != nil && strings.Contains(err.Error(), hexKey[4:20]) {
				t.Fatal("the error repeats the key")
			}
			if err == nil && crypto.PubkeyToAddress(got.PublicKey) != crypto.PubkeyToAddress(key.PublicKey) {
				t.Fatal("wrong key loaded")
			}
		})
	}
	// WriteKeyFile writes what LoadKeyFile accepts, and never overwrites.
	p := filepath.Join(dir, "written")
	if err := wallet.WriteKeyFile(p, key); err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.LoadKeyFile(p); err != nil {
		t.Fatal(err)
	}
	if err := wallet.WriteKeyFile(p, key); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing key file")
	}
}
