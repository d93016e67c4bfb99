package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
)

// wcliEnv is a real local stack for the wallet commands: a devnet, a facilitator, a paid API,
// the buyer's key as a key file and as a keystore, a policy file and a SQLite store.
type wcliEnv struct {
	*quidtest.Env
	api      string
	rpc      string
	dir      string
	keyFile  string
	keystore string
	passFile string
	policy   string
	store    string
	address  string
}

const (
	wcliPassphrase = "correct horse battery staple"
	// wcliPolicy makes the $0.25 report wait for a human, and lets the $0.35 route pass
	// max_payment but not the hour's budget once the report is paid.
	wcliPolicy = `max_payment: "0.40"
budgets:
  hour: "0.60"
  day: "1"
approve_above: "0.20"
max_authorization: 2m
duplicate_window: 10m
`
)

var wcliRoutes = map[string]string{"/weather": "$0.01", "/quote": "$0.005", "/report": "$0.25", "/big": "$0.35"}

func newWcliEnv(t *testing.T, policy string) *wcliEnv {
	t.Helper()
	return newWcliEnvOn(t, policy, quidtest.NewEnv(t, quidtest.Options{}))
}

func newWcliEnvOn(t *testing.T, policy string, env *quidtest.Env) *wcliEnv {
	t.Helper()
	mux := http.NewServeMux()
	pw, err := paywall.New(paywall.Config{Facilitator: env.Facilitator, ChainID: env.Chain.ChainID(), PayTo: env.Seller.Address,
		Assets: evm.NewRegistry(env.Token)})
	if err != nil {
		t.Fatal(err)
	}
	for path, price := range wcliRoutes {
		charge, err := pw.Charge(paywall.Route{Price: price, Description: path, MimeType: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"route":%q}`, path)
		mux.Handle("GET "+path, charge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })))
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rpc, err := env.Chain.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &wcliEnv{Env: env, api: srv.URL, rpc: rpc, dir: dir, keyFile: filepath.Join(dir, "buyer.key"),
		keystore: filepath.Join(dir, "buyer.json"), passFile: filepath.Join(dir, "passphrase"),
		policy: filepath.Join(dir, "policy.yaml"), store: filepath.Join(dir, "data", "wallet.db"),
		address: env.Buyer.Address.Hex()}
	if err := wallet.WriteKeyFile(e.keyFile, env.Buyer.Key); err != nil {
		t.Fatal(err)
	}
	if err := wallet.WriteKeystore(e.keystore, env.Buyer.Key, []byte(wcliPassphrase), wallet.ScryptParams{N: 2, P: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.passFile, []byte(wcliPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.policy, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// wcliResult is what one command did.
type wcliResult struct {
	code           int
	stdout, stderr string
}

// quid runs one command as the binary would and returns its outcome.
func (e *wcliEnv) quid(t *testing.T, args ...string) wcliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return wcliResult{code, out.String(), errOut.String()}
}

func (r wcliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// pay runs quid pay with the env's key file, store and policy, and more args.
func (e *wcliEnv) pay(t *testing.T, path string, more ...string) wcliResult {
	t.Helper()
	return e.quid(t, append([]string{"pay", e.api + path, "--key-file", e.keyFile, "--store", e.store, "--policy", e.policy}, more...)...)
}

// ledger opens the env's store as a wallet administered by address, to read the journal.
func (e *wcliEnv) journal(t *testing.T) []store.JournalEntry {
	t.Helper()
	db, err := store.Open(context.Background(), e.store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w, err := wallet.New(wallet.Config{Address: e.Buyer.Address, Ledger: db, Assets: evm.NewRegistry(e.Token)})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := w.Journal(context.Background(), store.JournalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

var wcliApprovalID = regexp.MustCompile(`approval pending: (\S+) `)

func TestPayCommandWithinPolicy(t *testing.T) {
	t.Parallel()
	e := newWcliEnv(t, wcliPolicy)
	before := e.Balance(t, e.Buyer.Address)
	spent := uint64(0)

	t.Run("pays and journals why", func(t *testing.T) {
		r := e.pay(t, "/weather", "--purpose", "plan the picnic", "--task", "T-42", "--expect-price", "0.01")
		if r.code != 0 || r.stdout != `{"route":"/weather"}` || !strings.Contains(r.stderr, "paid 0.01 qUSD") {
			t.Fatal(r)
		}
		spent += 10_000
		var found bool
		for _, en := range e.journal(t) {
			found = found || en.Kind == store.KindPaid && en.Purpose == "plan the picnic" && en.TaskID == "T-42" && en.Tx != ""
		}
		if !found {
			t.Fatalf("no paid journal entry with the purpose and task: %+v", e.journal(t))
		}
	})
	t.Run("the same request again is a duplicate", func(t *testing.T) {
		r := e.pay(t, "/weather", "--purpose", "plan the picnic")
		if r.code != exitRefused || !strings.Contains(r.stderr, "--again") {
			t.Fatal(r)
		}
	})
	t.Run("--again pays again on purpose", func(t *testing.T) {
		r := e.pay(t, "/weather", "--purpose", "fresher forecast", "--again")
		if r.code != 0 || !strings.Contains(r.stderr, "paid 0.01 qUSD") {
			t.Fatal(r)
		}
		spent += 10_000
	})
	t.Run("a price above the expected one is refused", func(t *testing.T) {
		r := e.pay(t, "/quote", "--expect-price", "0.001")
		if r.code != exitRefused || !strings.Contains(r.stderr, "expected price") || !strings.Contains(r.stderr, "nothing was paid") {
			t.Fatal(r)
		}
	})
	t.Run("from an encrypted keystore", func(t *testing.T) {
		r := e.quid(t, "pay", e.api+"/quote", "--keystore", e.keystore, "--passphrase-file", e.passFile, "--store", e.store, "--policy", e.policy, "--purpose", "a quote")
		if r.code != 0 || !strings.Contains(r.stderr, "paid 0.005 qUSD") {
			t.Fatal(r)
		}
		spent += 5_000
	})
	t.Run("approval pending, approved, paid once", func(t *testing.T) {
		r := e.pay(t, "/report", "--purpose", "quarterly numbers", "--task", "T-7")
		m := wcliApprovalID.FindStringSubmatch(r.stderr)
		if r.code != exitApprovalPending || m == nil || !strings.Contains(r.stderr, "quid wallet approve "+m[1]) {
			t.Fatal(r)
		}
		id := m[1]
		// Retrying before a human decided pays nothing.
		if r := e.pay(t, "/report", "--approval", id); r.code == 0 {
			t.Fatalf("paid before approval: %v", r)
		}
		if r := e.quid(t, "wallet", "approve", id, "--by", "alice", "--address", e.address, "--store", e.store); r.code != 0 || !strings.Contains(r.stdout, "approved "+id) {
			t.Fatal(r)
		}
		r = e.pay(t, "/report", "--approval", id, "--purpose", "quarterly numbers", "--task", "T-7")
		if r.code != 0 || !strings.Contains(r.stderr, "paid 0.25 qUSD") {
			t.Fatal(r)
		}
		spent += 250_000
		// The approval is spent: using it again pays nothing.
		if r := e.pay(t, "/report", "--approval", id, "--again"); r.code == 0 {
			t.Fatalf("an approval paid twice: %v", r)
		}
		var approved bool
		for _, en := range e.journal(t) {
			approved = approved || en.Kind == store.KindApproved && en.Approval == id && en.Actor == "alice"
		}
		if !approved {
			t.Fatal("the approval is not journaled with who gave it")
		}
	})
	t.Run("denied", func(t *testing.T) {
		r := e.pay(t, "/report", "--again")
		m := wcliApprovalID.FindStringSubmatch(r.stderr)
		if r.code != exitApprovalPending || m == nil {
			t.Fatal(r)
		}
		if r := e.quid(t, "wallet", "deny", m[1], "--by", "carol", "--reason", "not this quarter", "--address", e.address, "--store", e.store); r.code != 0 || !strings.Contains(r.stdout, "denied") {
			t.Fatal(r)
		}
		r = e.pay(t, "/report", "--approval", m[1], "--again")
		if r.code != exitRefused || !strings.Contains(r.stderr, "denied") {
			t.Fatal(r)
		}
	})

	t.Run("over budget names the budget", func(t *testing.T) {
		// $0.275 spent this hour of $0.60: the $0.35 route would pass budgets.hour. It also needs
		// approval (above $0.20); whichever rule the wallet applies first, once approved the
		// budget refuses.
		r := e.pay(t, "/big")
		if m := wcliApprovalID.FindStringSubmatch(r.stderr); m != nil {
			if r.code != exitApprovalPending {
				t.Fatal(r)
			}
			if r := e.quid(t, "wallet", "approve", m[1], "--by", "bob", "--keystore", e.keystore, "--store", e.store); r.code != 0 {
				t.Fatal(r)
			}
			r = e.pay(t, "/big", "--approval", m[1])
		}
		if r.code != exitRefused || !strings.Contains(r.stderr, "budgets.hour") || !strings.Contains(r.stderr, "nothing was paid") {
			t.Fatal(r)
		}
	})
	// The chain agrees: the buyer paid exactly what the command reported, nothing more.
	after := e.Balance(t, e.Buyer.Address)
	want, _ := before.Sub(evm.NewAmount(spent))
	if after.Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s (spent %d)", after, want, spent)
	}
}

func TestPayCommandKeys(t *testing.T) {
	t.Parallel()
	e := newWcliEnv(t, wcliPolicy)
	hexKey := fmt.Sprintf("%x", crypto.FromECDSA(e.Buyer.Key))
	loose := filepath.Join(e.dir, "loose.json")
	raw, _ := os.ReadFile(e.keystore)
	os.WriteFile(loose, raw, 0o644)
	os.Chmod(loose, 0o644)
	wrongPass := filepath.Join(e.dir, "wrong")
	os.WriteFile(wrongPass, []byte("not it\n"), 0o600)
	loosePass := filepath.Join(e.dir, "loosepass")
	os.WriteFile(loosePass, []byte(wcliPassphrase), 0o644)
	os.Chmod(loosePass, 0o644)
	base := []string{"pay", e.api + "/weather", "--store", e.store, "--policy", e.policy}
	before := e.Balance(t, e.Buyer.Address)

	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"wrong passphrase", []string{"--keystore", e.keystore, "--passphrase-file", wrongPass}, 1, "passphrase does not decrypt"},
		{"keystore others can read", []string{"--keystore", loose, "--passphrase-file", e.passFile}, 1, "chmod 600"},
		{"passphrase file others can read", []string{"--keystore", e.keystore, "--passphrase-file", loosePass}, 1, "chmod 600"},
		{"no passphrase and no terminal", []string{"--keystore", e.keystore}, 1, "needs a passphrase"},
		{"both kinds of key", []string{"--keystore", e.keystore, "--key-file", e.keyFile, "--passphrase-file", e.passFile}, 1, "give one"},
		{"no key", nil, 2, "Usage"},
		{"no max and no policy", []string{"--key-file", e.keyFile, "--policy", ""}, 2, "Usage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.quid(t, append(base, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Fatal(r)
			}
			for _, secret := range []string{hexKey, hexKey[:16], wcliPassphrase, "not it"} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Fatalf("a secret appeared in the output: %v", r)
				}
			}
		})
	}
	if after := e.Balance(t, e.Buyer.Address); after.Cmp(before) != 0 {
		t.Fatalf("refused commands moved money: %s -> %s", before, after)
	}
}

func TestPassphraseSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "p")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	notTTY, err := os.Open(file) // a regular file: not a terminal
	if err != nil {
		t.Fatal(err)
	}
	defer notTTY.Close()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "QUID_PASSPHRASE" {
				return v
			}
			return ""
		}
	}
	cases := []struct {
		name string
		file string
		env  string
		want string
		err  error
	}{
		{"file first", file, "from-env", "from-file", nil},
		{"then the environment", "", "from-env", "from-env", nil},
		{"no terminal to ask", "", "", "", errNoPassphrase},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := passphrase(tc.file, env(tc.env), notTTY, io.Discard, false)
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("%q, %v", got, err)
			}
		})
	}
}

// TestPayCommandConcurrentAgentsShareOneBudget runs 10 quid pay at once on one store, each with
// its own connection as separate processes would have: exactly the budget's worth is paid.
func TestPayCommandConcurrentAgentsShareOneBudget(t *testing.T) {
	t.Parallel()
	e := newWcliEnv(t, "max_payment: \"0.01\"\nbudgets: {hour: \"0.05\"}\n")
	before := e.Balance(t, e.Buyer.Address)
	results := make([]wcliResult, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = e.pay(t, fmt.Sprintf("/weather?agent=%d", i), "--task", fmt.Sprint(i)) })
	}
	wg.Wait()
	paid, refused := 0, 0
	for _, r := range results {
		switch {
		case r.code == 0:
			paid++
		case r.code == exitRefused && strings.Contains(r.stderr, "budgets.hour"):
			refused++
		default:
			t.Errorf("unexpected: %v", r)
		}
	}
	if paid != 5 || refused != 5 {
		t.Fatalf("%d paid, %d refused; want 5 and 5", paid, refused)
	}
	want, _ := before.Sub(evm.NewAmount(50_000))
	if after := e.Balance(t, e.Buyer.Address); after.Cmp(want) != 0 {
		t.Fatalf("buyer balance %s, want %s", after, want)
	}
	// The payment that took the budget past 80% raised an alert, once; quid wallet shows it.
	alerts := 0
	for _, r := range results {
		alerts += strings.Count(r.stderr, "alert: budgets.hour")
	}
	r := e.quid(t, "wallet", "--address", e.address, "--store", e.store, "--policy", e.policy, "--rpc", "")
	if alerts != 1 || r.code != 0 || !strings.Contains(r.stdout, "recent alerts") || !strings.Contains(r.stdout, "budgets.hour (wallet) at 0.04 qUSD of 0.05 qUSD") {
		t.Fatalf("%d alerts printed; %v", alerts, r)
	}
}

// TestPayCommandFailureMidway breaks the seller's chain at the moment of settlement. A
// broadcast lost in transit is collected by presenting the same payment again: paid once. A
// chain that stays down leaves the payment's outcome unknown: the command fails, the spend stays
// counted (the authorization could still be settled), and a retry pays only on purpose.
func TestPayCommandFailureMidway(t *testing.T) {
	t.Parallel()
	env, faults := quidtest.NewFaultyEnv(t, quidtest.Options{})
	e := newWcliEnvOn(t, "max_payment: \"0.01\"\nbudgets: {hour: \"0.05\"}\nmax_authorization: 2m\n", env)
	before := e.Balance(t, e.Buyer.Address)

	faults.Set(quidtest.SendTransaction, quidtest.Fault{Err: quidtest.TimeoutError(), After: true, Times: 1})
	r := e.pay(t, "/weather", "--pending-wait", "30s", "--purpose", "answer lost")
	if r.code != 0 || strings.Count(r.stderr, "paid 0.01 qUSD") != 1 {
		t.Fatal(r)
	}
	want, _ := before.Sub(evm.NewAmount(10_000))
	if after := e.Balance(t, e.Buyer.Address); after.Cmp(want) != 0 {
		t.Fatalf("after a lost broadcast answer: balance %s, want %s", after, want)
	}

	faults.FailAll(quidtest.TransportError())
	r = e.pay(t, "/quote", "--pending-wait", "1s", "--purpose", "chain down")
	if r.code != exitNotServed || !strings.Contains(r.stderr, "after a payment of 0.005 qUSD") {
		t.Fatalf("served while the chain was down, or not said that a payment may be out: %v", r)
	}
	faults.Heal()
	if r := e.pay(t, "/quote", "--purpose", "chain back"); r.code != exitRefused || !strings.Contains(r.stderr, "--again") {
		t.Fatalf("a payment of unknown outcome was made again without --again: %v", r)
	}
	r = e.pay(t, "/quote", "--again", "--purpose", "chain back")
	if r.code != 0 {
		t.Fatal(r)
	}
	want, _ = want.Sub(evm.NewAmount(5_000))
	if after := e.Balance(t, e.Buyer.Address); after.Cmp(want) != 0 {
		t.Fatalf("balance %s, want %s", after, want)
	}
	var kinds []string
	for _, en := range e.journal(t) {
		kinds = append(kinds, en.Kind)
	}
	if !slices.Contains(kinds, store.KindUnknown) && !slices.Contains(kinds, store.KindFailed) {
		t.Fatalf("the unsettled payment is not journaled: %v", kinds)
	}
}

func TestStoreHintNeverShowsAPassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"postgres://quid:s3cret@db/quid", "postgresql://quid:s3cret@db/quid"} {
		if h := storeHint(dsn); strings.Contains(h, "s3cret") {
			t.Fatalf("%s -> %s", dsn, h)
		}
	}
	if h := storeHint("/var/lib/quid/wallet.db"); h != " --store /var/lib/quid/wallet.db" {
		t.Fatal(h)
	}
	if h := storeHint(defaultWalletStore()); h != "" {
		t.Fatal(h)
	}
}
