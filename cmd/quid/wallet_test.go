package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/wallet"
)

func TestWalletCommandShowsBalancesBudgetsApprovalsAndPayments(t *testing.T) {
	t.Parallel()
	e := newWcliEnv(t, wcliPolicy)
	if r := e.pay(t, "/weather", "--purpose", "plan the picnic", "--task", "T-42"); r.code != 0 {
		t.Fatal(r)
	}
	pending := e.pay(t, "/report", "--purpose", "quarterly numbers")
	m := wcliApprovalID.FindStringSubmatch(pending.stderr)
	if m == nil {
		t.Fatal(pending)
	}
	balance := e.Balance(t, e.Buyer.Address)

	// Each way of naming the wallet shows the same wallet; a keystore needs no passphrase.
	for _, who := range [][]string{{"--address", e.address}, {"--keystore", e.keystore}, {"--key-file", e.keyFile}} {
		args := append([]string{"wallet", "--store", e.store, "--policy", e.policy, "--rpc", e.rpc}, who...)
		r := e.quid(t, args...)
		if r.code != 0 {
			t.Fatal(r)
		}
		for _, want := range []string{
			"wallet " + e.address,
			"balance: " + e.Token.Format(balance) + " on eip155:31337",
			// budgets used and remaining per window
			"budgets.hour", "budgets.day", "0.01 qUSD", "0.59 qUSD", "0.99 qUSD",
			// the pending approval, with how to decide it
			m[1], "approve_above", "0.25 qUSD", "quarterly numbers", "quid wallet approve ID",
			// the payment, with why
			"plan the picnic", "T-42", "paid",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: %q missing from\n%s", who, want, r.stdout)
			}
		}
	}

	// Without a chain, a policy or anything spent, it still answers.
	r := e.quid(t, "wallet", "--store", filepath.Join(e.dir, "empty.db"), "--address", e.address, "--rpc", "")
	if r.code != 0 || !strings.Contains(r.stdout, "(no policy given") || strings.Count(r.stdout, "(none)") != 2 {
		t.Fatal(r)
	}
	// An unreachable chain is reported, not fatal.
	r = e.quid(t, "wallet", "--store", e.store, "--address", e.address, "--rpc", "http://127.0.0.1:1")
	if r.code != 0 || !strings.Contains(r.stdout, "unreachable") {
		t.Fatal(r)
	}

	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no wallet named", []string{"wallet", "--store", e.store}, 1, "--address"},
		{"a bad address", []string{"wallet", "--store", e.store, "--address", "0x12"}, 1, "--address"},
		{"approve an unknown id", []string{"wallet", "approve", "apr_nope", "--by", "alice", "--address", e.address, "--store", e.store}, 1, "no such approval"},
		{"approve without an id", []string{"wallet", "approve", "--address", e.address, "--store", e.store}, 2, "Usage"},
		{"deny twice", []string{"wallet", "deny", m[1], "--by", "alice", "--address", e.address, "--store", e.store}, 0, "denied " + m[1]},
		{"then approve", []string{"wallet", "approve", m[1], "--by", "alice", "--address", e.address, "--store", e.store}, 1, "no longer pending"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.quid(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.msg) {
				t.Fatal(r)
			}
		})
	}
}

func TestWalletNewWritesAKeystore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("a long passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ks := filepath.Join(dir, "agent.json")
	e := &wcliEnv{}
	r := e.quid(t, "wallet", "new", "--keystore", ks, "--passphrase-file", pass, "--light-scrypt")
	addr := regexp.MustCompile(`new wallet (0x[0-9a-fA-F]{40})`).FindStringSubmatch(r.stdout)
	if r.code != 0 || addr == nil {
		t.Fatal(r)
	}
	st, err := os.Stat(ks)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keystore mode %v, %v", st.Mode(), err)
	}
	key, err := wallet.LoadKeystore(ks, []byte("a long passphrase"))
	if err != nil || crypto.PubkeyToAddress(key.PublicKey).Hex() != addr[1] {
		t.Fatalf("the keystore does not hold the printed wallet: %v", err)
	}
	if r := e.quid(t, "wallet", "new", "--keystore", ks, "--passphrase-file", pass, "--light-scrypt"); r.code != 1 {
		t.Fatalf("overwrote a keystore: %v", r)
	}
	if r := e.quid(t, "wallet", "new", "--passphrase-file", pass); r.code != 2 {
		t.Fatal(r)
	}
}

// TestExamplePolicy loads the example policy and checks it documents every key a Policy has,
// so the example cannot fall behind the code.
func TestExamplePolicy(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "examples", "policy.yaml")
	if _, err := wallet.LoadPolicy(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	var keys func(reflect.Type, string)
	keys = func(tp reflect.Type, prefix string) {
		for i := range tp.NumField() {
			f := tp.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `:`).MatchString(text) {
				t.Errorf("examples/policy.yaml does not document %s%s", prefix, name)
			}
			if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == tp.PkgPath() {
				keys(f.Type, prefix+name+".")
			}
		}
	}
	keys(reflect.TypeFor[wallet.Policy](), "")
}
