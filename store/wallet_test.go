package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

var (
	walletAsset = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	walletPayee = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
)

func spendRequest(wallet, id string, amount uint64, now time.Time, limits ...store.SpendLimit) store.SpendRequest {
	return store.SpendRequest{ID: id, Wallet: wallet, Network: "eip155:31337", Asset: walletAsset, Amount: evm.NewAmount(amount),
		Payee: walletPayee, Host: "api.example.com", Scopes: []string{store.ScopeWallet, store.ScopePayee(walletPayee), store.ScopeHost("api.example.com")},
		Limits: limits, Now: now, Expires: now.Add(time.Minute)}
}

func TestWalletSpendLimits(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		day := store.SpendLimit{Rule: "budgets.day", Scope: store.ScopeWallet, Window: 24 * time.Hour, Max: evm.NewAmount(100)}
		perPayment := store.SpendLimit{Rule: "max_payment", Max: evm.NewAmount(60)}
		usage, err := db.ReserveSpend(ctx, spendRequest("w", "s1", 60, now, perPayment, day))
		if err != nil || len(usage) != 2 || usage[1].Used.String() != "60" {
			t.Fatalf("first spend: %+v %v", usage, err)
		}
		_, err = db.ReserveSpend(ctx, spendRequest("w", "s2", 61, now, perPayment, day))
		var le *store.LimitError
		if !errors.As(err, &le) || le.Limit.Rule != "max_payment" {
			t.Fatalf("over the per-payment cap: %v", err)
		}
		_, err = db.ReserveSpend(ctx, spendRequest("w", "s3", 41, now, perPayment, day))
		if !errors.As(err, &le) || le.Limit.Rule != "budgets.day" || le.Used.String() != "60" || !errors.Is(err, store.ErrLimit) {
			t.Fatalf("over the day: %v", err)
		}
		// Another wallet's budget is its own.
		if _, err := db.ReserveSpend(ctx, spendRequest("other", "s3", 41, now, day)); err != nil {
			t.Fatal(err)
		}
		// Released spend counts no more; settled spend does.
		if _, err := db.ReleaseSpend(ctx, "w", "s1", store.JournalEntry{Wallet: "w", Time: now, Kind: store.KindFailed}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ReserveSpend(ctx, spendRequest("w", "s4", 100, now, day)); err != nil {
			t.Fatalf("after release: %v", err)
		}
		if _, err := db.SettleSpend(ctx, "w", "s4", "0xtx", store.JournalEntry{Wallet: "w", Time: now, Kind: store.KindPaid}); err != nil {
			t.Fatal(err)
		}
		if used, err := db.SpentIn(ctx, "w", "eip155:31337", walletAsset, day, now); err != nil || used.String() != "100" {
			t.Fatalf("spent %v %v", used, err)
		}
		// Out of the window, or a reservation past its authorization's expiry, counts no more.
		if used, _ := db.SpentIn(ctx, "w", "eip155:31337", walletAsset, day, now.Add(25*time.Hour)); !used.IsZero() {
			t.Fatalf("a day later %v", used)
		}
		if _, err := db.ReserveSpend(ctx, spendRequest("w", "s5", 5, now, store.SpendLimit{Rule: "r", Scope: store.ScopeWallet, Window: time.Hour, Max: evm.NewAmount(1000)})); err != nil {
			t.Fatal(err)
		}
		hour := store.SpendLimit{Rule: "r", Scope: store.ScopeWallet, Window: time.Hour, Max: evm.NewAmount(1000)}
		if used, _ := db.SpentIn(ctx, "w", "eip155:31337", walletAsset, hour, now.Add(2*time.Minute)); used.String() != "100" {
			t.Fatalf("an expired reservation still counts: %v", used)
		}
		if known, _ := db.KnownPayee(ctx, "w", walletPayee); !known {
			t.Fatal("payee of a settled spend unknown")
		}
		refs, err := db.SpentAssets(ctx, "w", now.Add(-time.Hour))
		if err != nil || len(refs) != 1 || refs[0].Asset != walletAsset {
			t.Fatalf("spent assets %+v %v", refs, err)
		}
	})
}

func TestWalletJournalChain(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i := range 5 {
			e, err := db.AppendJournal(ctx, store.JournalEntry{Wallet: "w", Time: time.Now(), Kind: store.KindPaid, Amount: evm.NewAmount(uint64(i + 1)), Payee: walletPayee, Purpose: fmt.Sprint("p", i)})
			if err != nil || e.Seq != uint64(i+1) {
				t.Fatalf("append %d: %+v %v", i, e, err)
			}
		}
		entries, err := db.ReadJournal(ctx, "w", store.JournalQuery{})
		if err != nil || len(entries) != 5 {
			t.Fatalf("%d entries, %v", len(entries), err)
		}
		var prev [32]byte
		for _, e := range entries {
			if e.Prev != prev || e.ComputeHash() != e.Hash {
				t.Fatalf("entry %d does not chain", e.Seq)
			}
			prev = e.Hash
		}
		last, _ := db.ReadJournal(ctx, "w", store.JournalQuery{Last: 2, Kinds: []string{store.KindPaid}})
		if len(last) != 2 || last[0].Seq != 4 || last[1].Seq != 5 {
			t.Fatalf("last 2: %+v", last)
		}
	})
}

var _ = sql.ErrNoRows
