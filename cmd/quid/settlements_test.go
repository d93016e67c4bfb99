package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/store"
)

func TestSettlementsListsAndReconciles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "quid.db"))
	if err != nil {
		t.Fatal(err)
	}
	env := quidtest.NewEnv(t, quidtest.Options{Facilitator: func(c *facilitator.Config) { c.Store = db }})
	req := env.Requirements(1000, env.Seller.Address)
	p := quidtest.Payload(t, env.Buyer.Key, env.Token.Domain(), quidtest.Authorization(t, env.Buyer.Key, req), req)
	s, err := env.Facilitator.Settle(context.Background(), p, req)
	if err != nil || !s.Success {
		t.Fatalf("settle: %+v %v", s, err)
	}
	db.Close()

	list := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"settlements", "--data", dir}, args...), &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return out.String()
	}
	if got := list(); !strings.Contains(got, s.Transaction) || !strings.Contains(got, "confirmed") {
		t.Errorf("settlements does not list the confirmed settlement:\n%s", got)
	}
	if got := list("--state", "confirmed"); !strings.Contains(got, s.Transaction) {
		t.Errorf("--state confirmed:\n%s", got)
	}
	if got := list("--state", "pending"); strings.Contains(got, s.Transaction) || !strings.Contains(got, "(none)") {
		t.Errorf("--state pending lists a confirmed settlement:\n%s", got)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"settlements", "--state", "bogus", "--data", dir}, &out, &errOut); code != 2 {
		t.Errorf("an unknown state: exit %d", code)
	}

	rpcURL, err := env.Chain.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := writeKey(t, fmt.Sprintf("%x", crypto.FromECDSA(env.Chain.Accounts()[relayerAccount].Key)), 0o600)
	out.Reset()
	if code := run(context.Background(), []string{"settlements", "reconcile", "--rpc", rpcURL, "--key-file", key, "--data", dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "0 settlements resolved") {
		t.Errorf("reconcile: exit %d, %s %s", code, out.String(), errOut.String())
	}
}
