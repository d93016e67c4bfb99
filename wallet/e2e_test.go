package wallet_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
)

// TestPolicyEndToEnd pays a real paywall on the devnet through a wallet whose ledger is a
// SQLite file: paid within policy, refused over budget with nothing paid, an approval that
// pays once after a human approves it, a delegation's cap, and a journal that verifies.
func TestPolicyEndToEnd(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	mw, err := paywall.Middleware(paywall.Config{Facilitator: env.Facilitator, ChainID: env.Chain.ChainID(),
		PayTo: env.Seller.Address, Assets: evm.NewRegistry(env.Token)}, paywall.Route{Price: "$0.01", Description: "forecast"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"sky":"clear","path":"`+r.URL.Path+`"}`)
	})))
	defer srv.Close()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func(id, policy string) *wallet.Wallet {
		p, err := wallet.ParsePolicy([]byte(policy))
		if err != nil {
			t.Fatal(err)
		}
		w, err := wallet.New(wallet.Config{Key: env.Buyer.Key, Assets: evm.NewRegistry(env.Token), Policy: p, Ledger: db, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	cent := evm.NewAmount(10_000)
	fetch := func(ctx context.Context, w *wallet.Wallet, path string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := w.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return string(b), errors.New(resp.Status)
		}
		return string(b), nil
	}
	moved := func(before evm.Amount) evm.Amount {
		now := env.Balance(t, env.Seller.Address)
		d, _ := now.Sub(before)
		return d
	}
	ctx := wallet.WithIntent(context.Background(), wallet.Intent{Purpose: "forecast", TaskID: "trip-1"})

	t.Run("within policy, then over budget", func(t *testing.T) {
		w := open("budget", "max_payment: \"0.05\"\nbudgets: {day: \"0.02\"}\n")
		before := env.Balance(t, env.Seller.Address)
		for _, path := range []string{"/a", "/b"} {
			body, err := fetch(ctx, w, path)
			if err != nil || !strings.Contains(body, "clear") {
				t.Fatalf("%s: %q %v", path, body, err)
			}
		}
		_, err := fetch(ctx, w, "/c")
		if !errors.Is(err, wallet.ErrOverBudget) {
			t.Fatalf("third: %v", err)
		}
		if got := moved(before); got.Cmp(evm.NewAmount(20_000)) != 0 {
			t.Fatalf("seller received %s; want 0.02", got)
		}
		paid := journal(t, w, store.KindPaid)
		if len(paid) != 2 || !strings.HasPrefix(paid[0].Tx, "0x") || paid[0].TaskID != "trip-1" {
			t.Fatalf("paid entries %+v", paid)
		}
		d := journal(t, w, store.KindDelivered)
		if len(d) != 2 || d[0].ResponseHash != sha256Hex(`{"sky":"clear","path":"/a"}`) {
			t.Fatalf("delivered %+v", d)
		}
	})

	t.Run("approval", func(t *testing.T) {
		w := open("approval", "max_payment: \"0.05\"\napprove_above: \"0.005\"\n")
		before := env.Balance(t, env.Seller.Address)
		_, err := fetch(ctx, w, "/report")
		var pending *wallet.ApprovalPendingError
		if !errors.As(err, &pending) {
			t.Fatalf("want a pending approval: %v", err)
		}
		if got := moved(before); !got.IsZero() {
			t.Fatalf("paid %s before approval", got)
		}
		if err := w.Approve(context.Background(), pending.ID, "owner"); err != nil {
			t.Fatal(err)
		}
		retry := wallet.WithIntent(context.Background(), wallet.Intent{ApprovalID: pending.ID})
		if _, err := fetch(retry, w, "/report"); err != nil {
			t.Fatal(err)
		}
		again := wallet.WithIntent(context.Background(), wallet.Intent{ApprovalID: pending.ID, Again: true})
		if _, err := fetch(again, w, "/report"); !errors.Is(err, wallet.ErrApprovalInvalid) {
			t.Fatalf("the approval used twice: %v", err)
		}
		if got := moved(before); got.Cmp(cent) != 0 {
			t.Fatalf("seller received %s; want 0.01 once", got)
		}
	})

	t.Run("delegation", func(t *testing.T) {
		w := open("delegation", "max_payment: \"0.05\"\nbudgets: {day: \"1\"}\n")
		child, err := w.Delegate(context.Background(), "0.01", 30*time.Minute, wallet.Scope{Hosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		before := env.Balance(t, env.Seller.Address)
		if _, err := fetch(ctx, child, "/d1"); err != nil {
			t.Fatal(err)
		}
		var ob *wallet.OverBudgetError
		if _, err := fetch(ctx, child, "/d2"); !errors.As(err, &ob) || ob.Rule != "delegation" {
			t.Fatalf("past the child's cap: %v", err)
		}
		if got := moved(before); got.Cmp(cent) != 0 {
			t.Fatalf("seller received %s; want 0.01", got)
		}
	})

	for _, id := range []string{"budget", "approval", "delegation"} {
		w := open(id, "max_payment: \"0.05\"\n")
		if n, err := w.VerifyJournal(context.Background()); err != nil || n == 0 {
			t.Fatalf("journal %s: %d entries, %v", id, n, err)
		}
	}
}
