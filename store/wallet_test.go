package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/pgtest"
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

// TestWalletJournalNeverForks: 50 goroutines append to one wallet's journal at once; the chain
// has 50 entries, numbered 1..50, each following the one before.
func TestWalletJournalNeverForks(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		race(t, 50, func(i int) (bool, error) {
			_, err := db.AppendJournal(ctx, store.JournalEntry{Wallet: "w", Time: time.Now(), Kind: store.KindAlert, Detail: fmt.Sprint(i)})
			return err == nil, err
		})
		entries, err := db.ReadJournal(ctx, "w", store.JournalQuery{})
		if err != nil || len(entries) != 50 {
			t.Fatalf("%d entries, %v", len(entries), err)
		}
		var prev [32]byte
		for i, e := range entries {
			if e.Seq != uint64(i+1) || e.Prev != prev || e.ComputeHash() != e.Hash {
				t.Fatalf("entry %d (seq %d) breaks the chain", i, e.Seq)
			}
			prev = e.Hash
		}
	})
}

// TestWalletApprovalConsumedOnce: of 30 concurrent spends carrying one approval, one is
// admitted; releasing it gives the approval back; a pending, denied, expired or mismatched
// approval admits nothing.
func TestWalletApprovalConsumedOnce(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		approval := func(id string) store.Approval {
			return store.Approval{ID: id, Wallet: "w", State: store.ApprovalPending, Rule: "approve_above", Network: "eip155:31337",
				Asset: walletAsset, Amount: evm.NewAmount(70), Payee: walletPayee, Host: "api.example.com", Method: "GET",
				URL: "https://api.example.com/r", Created: now, Expires: now.Add(time.Hour)}
		}
		entry := store.JournalEntry{Wallet: "w", Time: now, Kind: store.KindPending}
		for _, id := range []string{"a1", "a2", "a3"} {
			if err := db.CreateApproval(ctx, approval(id), entry); err != nil {
				t.Fatal(err)
			}
		}
		withApproval := func(spend, approval string, amount uint64) store.SpendRequest {
			r := spendRequest("w", spend, amount, now)
			r.ApprovalID = approval
			return r
		}
		if _, err := db.ReserveSpend(ctx, withApproval("early", "a1", 70)); !errors.Is(err, store.ErrApprovalNotApproved) {
			t.Fatalf("pending approval: %v", err)
		}
		if err := db.DecideApproval(ctx, "w", "a1", true, "alice", "", now, entry); err != nil {
			t.Fatal(err)
		}
		if err := db.DecideApproval(ctx, "w", "a1", false, "bob", "", now, entry); !errors.Is(err, store.ErrNotPending) {
			t.Fatalf("decided twice: %v", err)
		}
		if err := db.DecideApproval(ctx, "w", "nope", true, "bob", "", now, entry); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown approval: %v", err)
		}
		if _, err := db.ReserveSpend(ctx, withApproval("dear", "a1", 71)); !errors.Is(err, store.ErrApprovalMismatch) {
			t.Fatalf("other amount: %v", err)
		}
		wins := race(t, 30, func(i int) (bool, error) {
			_, err := db.ReserveSpend(ctx, withApproval(fmt.Sprint("s", i), "a1", 70))
			if errors.Is(err, store.ErrApprovalUsed) {
				return false, nil
			}
			return err == nil, err
		})
		if wins != 1 {
			t.Fatalf("%d spends consumed one approval", wins)
		}
		a, err := db.GetApproval(ctx, "w", "a1")
		if err != nil || a.State != store.ApprovalUsed || a.DecidedBy != "alice" || a.UsedBy == "" {
			t.Fatalf("approval %+v %v", a, err)
		}
		if _, err := db.ReleaseSpend(ctx, "w", a.UsedBy, store.JournalEntry{Wallet: "w", Time: now, Kind: store.KindFailed}); err != nil {
			t.Fatal(err)
		}
		if a, _ := db.GetApproval(ctx, "w", "a1"); a.State != store.ApprovalApproved {
			t.Fatalf("a released spend kept its approval: %+v", a)
		}
		db.DecideApproval(ctx, "w", "a2", false, "bob", "no", now, entry)
		if _, err := db.ReserveSpend(ctx, withApproval("denied", "a2", 70)); !errors.Is(err, store.ErrApprovalDenied) {
			t.Fatalf("denied: %v", err)
		}
		db.DecideApproval(ctx, "w", "a3", true, "alice", "", now, entry)
		late := withApproval("late", "a3", 70)
		late.Now = now.Add(2 * time.Hour)
		if _, err := db.ReserveSpend(ctx, late); !errors.Is(err, store.ErrApprovalExpired) {
			t.Fatalf("expired: %v", err)
		}
		pending, err := db.ListApprovals(ctx, "w", store.ApprovalApproved)
		if err != nil || len(pending) != 2 {
			t.Fatalf("approved list %+v %v", pending, err)
		}
	})
}

// TestWalletDelegationsAndDuplicates: a revoked or expired delegation admits nothing; the
// duplicate key refuses a live spend's twin inside the window only.
func TestWalletDelegationsAndDuplicates(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		d := store.Delegation{ID: "d1", Wallet: "w", Limit: "0.5", Hosts: []string{"api.example.com"}, Created: now, Expires: now.Add(time.Hour)}
		if err := db.CreateDelegation(ctx, d, store.JournalEntry{Wallet: "w", Time: now, Kind: store.KindDelegated}); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetDelegation(ctx, "w", "d1")
		if err != nil || got.Limit != "0.5" || len(got.Hosts) != 1 || !got.Revoked.IsZero() {
			t.Fatalf("delegation %+v %v", got, err)
		}
		r := spendRequest("w", "s1", 10, now)
		r.Delegations = []string{"d1"}
		if _, err := db.ReserveSpend(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.ID, r.Now = "s2", now.Add(2*time.Hour)
		if _, err := db.ReserveSpend(ctx, r); !errors.Is(err, store.ErrDelegationExpired) {
			t.Fatalf("expired: %v", err)
		}
		db.RevokeDelegation(ctx, "w", "d1", now, store.JournalEntry{Wallet: "w", Time: now, Kind: store.KindRevoked})
		r.Now = now
		if _, err := db.ReserveSpend(ctx, r); !errors.Is(err, store.ErrDelegationRevoked) {
			t.Fatalf("revoked: %v", err)
		}
		if err := db.RevokeDelegation(ctx, "w", "nope", now, store.JournalEntry{Wallet: "w", Time: now}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}

		dup := spendRequest("w", "d-a", 10, now)
		dup.DupKey, dup.DupWindow = [32]byte{1}, time.Minute
		if _, err := db.ReserveSpend(ctx, dup); err != nil {
			t.Fatal(err)
		}
		dup.ID = "d-b"
		if _, err := db.ReserveSpend(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("twin: %v", err)
		}
		dup.Now = now.Add(2 * time.Minute) // outside the window
		if _, err := db.ReserveSpend(ctx, dup); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}

// TestWalletSpendSumsAreExact: 18-decimal amounts far past int64 add up exactly, and a sum
// past uint256 is refused rather than wrapped.
func TestWalletSpendSumsAreExact(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		big, _ := evm.ParseDecimal("1000000", 18) // 1e24 atomic units
		max, _ := evm.ParseDecimal("2500000", 18)
		l := store.SpendLimit{Rule: "budgets.day", Scope: store.ScopeWallet, Window: 24 * time.Hour, Max: max}
		for i := range 3 {
			r := spendRequest("w", fmt.Sprint("b", i), 0, now, l)
			r.Amount = big
			_, err := db.ReserveSpend(ctx, r)
			if (i < 2) != (err == nil) {
				t.Fatalf("spend %d: %v", i, err)
			}
		}
		used, err := db.SpentIn(ctx, "w", "eip155:31337", walletAsset, l, now)
		if err != nil || used.String() != "2000000000000000000000000" {
			t.Fatalf("used %s %v", used, err)
		}
		huge, _ := evm.ParseAmount("115792089237316195423570985008687907853269984665640564039457584007913129639935")
		r := spendRequest("w", "huge", 0, now, store.SpendLimit{Rule: "r", Scope: store.ScopeWallet, Window: time.Hour, Max: huge})
		r.Amount = huge
		if _, err := db.ReserveSpend(ctx, r); !errors.Is(err, store.ErrLimit) {
			t.Fatalf("a sum past uint256: %v", err)
		}
	})
}

// BenchmarkWalletReserveSpend reserves and settles one payment against a day budget, a
// per-payee cap and the duplicate window, on each engine, with a history of b.N spends.
func BenchmarkWalletReserveSpend(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "quid.db")
			if engine == "postgres" {
				dsn = pgtest.DSN(b)
			}
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			max, _ := evm.ParseDecimal("1000000", 6)
			limits := []store.SpendLimit{
				{Rule: "budgets.day", Scope: store.ScopeWallet, Window: 24 * time.Hour, Max: max},
				{Rule: "per_payee", Scope: store.ScopePayee(walletPayee), Window: 24 * time.Hour, Max: max},
			}
			b.ResetTimer()
			for i := range b.N {
				r := spendRequest("w", fmt.Sprint("s", i), 10_000, time.Now(), limits...)
				r.DupKey, r.DupWindow = [32]byte{byte(i), byte(i >> 8), byte(i >> 16), 1}, 10*time.Minute
				if _, err := db.ReserveSpend(ctx, r); err != nil {
					b.Fatal(err)
				}
				if _, err := db.SettleSpend(ctx, "w", r.ID, "0x1", store.JournalEntry{Wallet: "w", Time: time.Now(), Kind: store.KindPaid}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
