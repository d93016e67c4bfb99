package wallet_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/pgtest"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

func TestMain(m *testing.M) {
	if os.Getenv(raceChildEnv) == "1" {
		os.Exit(raceChild())
	}
	pgtest.Main(m)
}

// ledgers runs a test against every Ledger: in memory, a SQLite file and PostgreSQL. dsn is
// "" for the memory ledger.
func ledgers(t *testing.T, test func(t *testing.T, l wallet.Ledger, dsn string)) {
	t.Helper()
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "" }},
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "wallet.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.dsn(t)
			if dsn == "" {
				test(t, wallet.NewMemoryLedger(), "")
				return
			}
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			test(t, db, dsn)
		})
	}
}

// shop is a hand-written fake seller: it asks accepts on every unpaid request and answers each
// payment with answer (by default: settled, with the body "paid N").
type shop struct {
	accepts []x402.PaymentRequirements
	answer  func(w http.ResponseWriter, n int)
	paid    atomic.Int64
	mu      sync.Mutex
	headers []string
	srv     *httptest.Server
}

func newShop(t testing.TB, answer func(w http.ResponseWriter, n int), accepts ...x402.PaymentRequirements) *shop {
	s := &shop{accepts: accepts, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get(x402.HeaderPaymentSignature)
		if h == "" {
			v, _ := x402.EncodeHeader(x402.PaymentRequired{X402Version: x402.V2, Accepts: s.accepts})
			w.Header().Set(x402.HeaderPaymentRequired, v)
			w.WriteHeader(http.StatusPaymentRequired)
			return
		}
		n := int(s.paid.Add(1))
		s.mu.Lock()
		s.headers = append(s.headers, h)
		s.mu.Unlock()
		if s.answer != nil {
			s.answer(w, n)
			return
		}
		settleHeader(w, x402.SettleResponse{Success: true, Transaction: fmt.Sprintf("0x%064x", n), Network: "eip155:31337"})
		fmt.Fprintf(w, "paid %d", n)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// cents is an exact requirement for n hundredths of the test token.
func cents(n uint64) x402.PaymentRequirements {
	return requirements(fmt.Sprint(n*10_000), token.Address, "eip155:31337")
}

func policyWallet(t *testing.T, key *ecdsa.PrivateKey, l wallet.Ledger, policy string, tune ...func(*wallet.Config)) *wallet.Wallet {
	t.Helper()
	p, err := wallet.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	cfg := wallet.Config{Key: key, Assets: evm.NewRegistry(token, otherToken), Policy: p, Ledger: l, PendingWait: 2 * time.Second}
	for _, f := range tune {
		f(&cfg)
	}
	w, err := wallet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// otherToken is a second trusted asset, with 18 decimals, on another chain.
var otherToken = evm.Asset{ChainID: 8453, Address: common.HexToAddress("0x00000000000000000000000000000000000000e1"),
	Symbol: "E18", Decimals: 18, Name: "Eighteen", Version: "1"}

func get(ctx context.Context, w *wallet.Wallet, url string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := w.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func journal(t *testing.T, w *wallet.Wallet, kinds ...string) []wallet.JournalEntry {
	t.Helper()
	entries, err := w.Journal(context.Background(), store.JournalQuery{Kinds: kinds})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	good := `
max_payment: "0.10"
budgets: {hour: "1", day: "5", week: "20"}
per_payee: {limit: "2", window: day}
per_host: {limit: "2", window: hour}
allow: {hosts: [api.example.com, "*.example.org", "bücher.example"], networks: ["eip155:8453"], assets: [USDC]}
block: {payees: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]}
approve_above: "1"
approve_new_payees: true
approval_ttl: 12h
max_authorization: 5m
duplicate_window: 10m
alert_threshold: 0.9
prefer: [USDC, "eip155:8453"]
`
	p, err := wallet.ParsePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Budgets.Day != "5" || p.PerHost.Window != "hour" || p.ApprovalTTL != 12*time.Hour || p.AlertThreshold != 0.9 || !p.ApproveNewPayees {
		t.Fatalf("parsed %+v", p)
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"typo", "max_paymnet: \"1\"\n", "line 1"},
		{"typo nested", "budgets:\n  dya: \"1\"\n", "line 2"},
		{"not an amount", "max_payment: 1e3\n", "max_payment"},
		{"negative", "budgets: {day: \"-1\"}\n", "budgets.day"},
		{"window", "per_payee: {limit: \"1\", window: month}\n", "per_payee.window"},
		{"payee", "allow: {payees: [bob]}\n", "allow.payees"},
		{"host", "block: {hosts: [\"exa mple.com\"]}\n", "block.hosts"},
		{"network", "allow: {networks: [base]}\n", "allow.networks"},
		{"threshold", "alert_threshold: 2\n", "alert_threshold"},
		{"duration", "approval_ttl: soon\n", "line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := wallet.ParsePolicy([]byte(tc.yaml))
			if !errors.Is(err, wallet.ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v; want ErrPolicy mentioning %q", err, tc.want)
			}
		})
	}
	// LoadPolicy names the file.
	path := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(path, []byte("max_paymnet: 1\n"), 0o600)
	if _, err := wallet.LoadPolicy(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadPolicy: %v", err)
	}
	if p, err := wallet.ParsePolicy(nil); err != nil || p == nil {
		t.Fatalf("an empty policy: %v", err)
	}
}

// TestPolicyRefusals: every list, the expected price and the per-payment cap refuse with their
// sentinel and rule, send no payment, and journal the refusal with its rule.
func TestPolicyRefusals(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	cases := []struct {
		name   string
		policy string
		intent wallet.Intent
		req    x402.PaymentRequirements
		want   error
		rule   string
	}{
		{"blocked host", "block: {hosts: [\"127.0.0.1\"]}\n", wallet.Intent{}, cents(1), wallet.ErrHostNotAllowed, "block.hosts"},
		{"host off the allowlist", "allow: {hosts: [\"*.example.com\"]}\n", wallet.Intent{}, cents(1), wallet.ErrHostNotAllowed, "allow.hosts"},
		{"blocklist wins", "allow: {hosts: [\"127.0.0.1\"]}\nblock: {hosts: [\"127.0.0.1\"]}\n", wallet.Intent{}, cents(1), wallet.ErrHostNotAllowed, "block.hosts"},
		{"blocked payee", "block: {payees: [\"" + payTo.Hex() + "\"]}\n", wallet.Intent{}, cents(1), wallet.ErrPayeeNotAllowed, "block.payees"},
		{"payee off the allowlist", "allow: {payees: [\"0x0000000000000000000000000000000000000001\"]}\n", wallet.Intent{}, cents(1), wallet.ErrPayeeNotAllowed, "allow.payees"},
		{"blocked asset by symbol", "block: {assets: [qusd]}\n", wallet.Intent{}, cents(1), wallet.ErrAssetNotAllowed, "block.assets"},
		{"asset off the allowlist", "allow: {assets: [\"" + otherToken.Address.Hex() + "\"]}\n", wallet.Intent{}, cents(1), wallet.ErrAssetNotAllowed, "allow.assets"},
		{"network off the allowlist", "allow: {networks: [\"eip155:8453\"]}\n", wallet.Intent{}, cents(1), wallet.ErrNetworkNotAllowed, "allow.networks"},
		{"blocked network", "block: {networks: [\"eip155:31337\"]}\n", wallet.Intent{}, cents(1), wallet.ErrNetworkNotAllowed, "block.networks"},
		{"above the expected price", "", wallet.Intent{ExpectedPrice: "0.01"}, cents(2), wallet.ErrOverExpectedPrice, "expected_price"},
		{"above max_payment", "max_payment: \"0.05\"\n", wallet.Intent{}, cents(6), wallet.ErrOverBudget, "max_payment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newShop(t, nil, tc.req)
			w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\n"+strings.Replace(tc.policy, "max_payment: \"0.05\"\n", "", 1),
				func(c *wallet.Config) {
					if strings.Contains(tc.policy, "max_payment") {
						c.Policy.MaxPayment = "0.05"
					}
				})
			ctx := wallet.WithIntent(context.Background(), tc.intent)
			_, _, err := get(ctx, w, s.srv.URL+"/r")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v; want %v", err, tc.want)
			}
			if n := s.paid.Load(); n != 0 {
				t.Fatalf("%d payments sent", n)
			}
			refused := journal(t, w, store.KindRefused)
			if len(refused) != 1 || refused[0].Rule != tc.rule || refused[0].Host != "127.0.0.1" {
				t.Fatalf("journal %+v; want one refusal by %s", refused, tc.rule)
			}
		})
	}
	// With the expected price met, the same request pays.
	s := newShop(t, nil, cents(1))
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\n")
	if status, _, err := get(wallet.WithIntent(context.Background(), wallet.Intent{ExpectedPrice: "0.01"}), w, s.srv.URL); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
}

// TestRedirectIsJudgedByTheHostItReaches: the http.Client follows a redirect from an allowed
// host to one that is not; the 402 there is refused, not paid.
func TestRedirectIsJudgedByTheHostItReaches(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	target := newShop(t, nil, cents(1))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(target.srv.URL, "http://"))
	// The same server under another name: "localhost" is not on the allowlist.
	elsewhere := "http://localhost:" + port + "/r"
	origin := httptest.NewServer(http.RedirectHandler(elsewhere, http.StatusFound))
	defer origin.Close()
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\nallow: {hosts: [\"127.0.0.1\"]}\n")
	_, _, err := get(context.Background(), w, origin.URL)
	if !errors.Is(err, wallet.ErrHostNotAllowed) {
		t.Fatalf("err %v; want ErrHostNotAllowed", err)
	}
	if n := target.paid.Load(); n != 0 {
		t.Fatalf("%d payments after the redirect", n)
	}
	if r := journal(t, w, store.KindRefused); len(r) != 1 || r[0].Host != "localhost" {
		t.Fatalf("journal %+v", r)
	}
	// Reached directly on the allowed name, it pays.
	if status, _, err := get(context.Background(), w, target.srv.URL+"/r"); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
}

// TestPreferenceThenCheapest: the server's order never decides; the policy's Prefer list does,
// then the price in whole units of each asset (6 and 18 decimals compared exactly).
func TestPreferenceThenCheapest(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	e18 := func(amount string) x402.PaymentRequirements {
		r := requirements(amount, otherToken.Address, "eip155:8453")
		return r
	}
	cases := []struct {
		name    string
		prefer  string
		accepts []x402.PaymentRequirements
		want    string // the amount paid
	}{
		{"costliest listed first", "", []x402.PaymentRequirements{cents(9), cents(3), cents(5)}, "30000"},
		// 0.02 E18 is cheaper than 0.03 qUSD although its atomic amount is far larger.
		{"across decimals", "", []x402.PaymentRequirements{cents(3), e18("20000000000000000")}, "20000000000000000"},
		{"preferred asset first", "prefer: [qUSD]\n", []x402.PaymentRequirements{e18("10000000000000000"), cents(3)}, "30000"},
		{"preferred network first", "prefer: [\"eip155:8453\"]\n", []x402.PaymentRequirements{cents(1), e18("50000000000000000")}, "50000000000000000"},
		{"preferred but refused", "prefer: [E18]\nblock: {assets: [E18]}\n", []x402.PaymentRequirements{e18("1"), cents(4)}, "40000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newShop(t, nil, tc.accepts...)
			w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\n"+tc.prefer)
			if status, _, err := get(context.Background(), w, s.srv.URL); err != nil || status != 200 {
				t.Fatalf("%d %v", status, err)
			}
			_, a, _ := decodePayment(t, s.headers[0])
			if a.Value.String() != tc.want {
				t.Fatalf("paid %s; want %s", a.Value, tc.want)
			}
		})
	}
}

// TestAuthorizationLifetimeAndTrustedDecimals: the signed authorization lives no longer than
// max_authorization whatever the server asks, and the amount is read with the registry's
// decimals even when the server's extra claims others.
func TestAuthorizationLifetimeAndTrustedDecimals(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	long := cents(1)
	long.MaxTimeoutSeconds = 3600
	s := newShop(t, nil, long)
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\nmax_authorization: 30s\n")
	if _, _, err := get(context.Background(), w, s.srv.URL); err != nil {
		t.Fatal(err)
	}
	_, a, _ := decodePayment(t, s.headers[0])
	if life := time.Until(time.Unix(int64(a.ValidBefore), 0)); life > 31*time.Second {
		t.Fatalf("authorization valid for %s; want at most 30s", life)
	}
	// 1 qUSD (1000000 atomic units at 6 decimals), presented as if the token had 18 decimals.
	lie := requirements("1000000", token.Address, "eip155:31337")
	lie.Extra.SetString("decimals", "18")
	liar := newShop(t, nil, lie)
	w = policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"0.5\"\n")
	var ob *wallet.OverBudgetError
	if _, _, err := get(context.Background(), w, liar.srv.URL); !errors.As(err, &ob) || ob.Amount.String() != "1000000" || ob.Limit.String() != "500000" {
		t.Fatalf("err %v; want 1 qUSD refused against 0.5", err)
	}
}

// TestDelegatedWalletCannotApproveOrRevokeOthers: a sub-agent's wallet decides no approvals
// and revokes only what lies under its own delegation.
func TestDelegatedWalletCannotApproveOrRevokeOthers(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(10))
	owner := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\napprove_above: \"0.05\"\n")
	ctx := context.Background()
	child, _ := owner.Delegate(ctx, "1", time.Hour, wallet.Scope{})
	sibling, _ := owner.Delegate(ctx, "1", time.Hour, wallet.Scope{})
	grandchild, _ := child.Delegate(ctx, "1", time.Hour, wallet.Scope{})
	var pending *wallet.ApprovalPendingError
	if _, _, err := get(ctx, child, s.srv.URL); !errors.As(err, &pending) {
		t.Fatalf("want pending: %v", err)
	}
	if err := child.Approve(ctx, pending.ID, "child"); !errors.Is(err, wallet.ErrNotOwner) {
		t.Fatalf("a child approved: %v", err)
	}
	if err := child.Revoke(ctx, sibling.DelegationID()); !errors.Is(err, wallet.ErrUnknownDelegation) {
		t.Fatalf("a child revoked its sibling: %v", err)
	}
	if err := child.Revoke(ctx, grandchild.DelegationID()); err != nil {
		t.Fatalf("a child could not revoke its own child: %v", err)
	}
	if err := owner.Approve(ctx, pending.ID, "owner"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPaidRequest pays a fake seller through a wallet without a policy, with a policy on
// the memory ledger, and with a policy on a SQLite ledger.
func BenchmarkPaidRequest(b *testing.B) {
	key, _ := crypto.GenerateKey()
	const policy = "max_payment: \"1\"\nbudgets: {day: \"1000000\"}\nper_payee: {limit: \"1000000\"}\n"
	for _, mode := range []string{"no policy", "policy/memory", "policy/sqlite"} {
		b.Run(mode, func(b *testing.B) {
			s := newShop(b, nil, cents(1))
			cfg := wallet.Config{Key: key, Assets: testRegistry(), Max: "1"}
			if mode != "no policy" {
				p, _ := wallet.ParsePolicy([]byte(policy))
				cfg.Policy, cfg.Max = p, ""
			}
			if mode == "policy/sqlite" {
				db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "w.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				cfg.Ledger = db
			}
			w, err := wallet.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, _, err := get(context.Background(), w, fmt.Sprintf("%s/%d", s.srv.URL, i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
