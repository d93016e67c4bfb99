package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

func newID() [16]byte {
	k := newKey()
	return [16]byte(k[:16])
}

func TestUseCapabilityIsAtomic(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		for _, max := range []uint64{1, 7} {
			id := newID()
			if wins := race(t, 50, func(int) (bool, error) { return db.UseCapability(ctx, id, max, exp) }); wins != int(max) {
				t.Fatalf("%d of 50 concurrent uses of a %d-use token succeeded", wins, max)
			}
			if used, err := db.CapabilityUsed(ctx, id); err != nil || used != max {
				t.Fatalf("used %d, %v; want %d", used, err, max)
			}
		}
		unlimited := newID()
		if wins := race(t, 20, func(int) (bool, error) { return db.UseCapability(ctx, unlimited, 0, exp) }); wins != 20 {
			t.Fatalf("%d of 20 uses of an unlimited token", wins)
		}
		// Pruning forgets expired tokens only.
		if err := db.PruneCapabilities(ctx, exp.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if used, _ := db.CapabilityUsed(ctx, unlimited); used != 20 {
			t.Fatalf("a live token's count was pruned: %d", used)
		}
	})
}

func TestSpendLimitIsAtomic(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		k := newKey()
		payer := common.BytesToAddress(k[:20])
		window := time.Unix(1_800_000_000, 0)
		max := evm.NewAmount(30_000)
		// 40 concurrent payments of 1,000 under a cap of 30,000: exactly 30 fit.
		if wins := race(t, 40, func(int) (bool, error) { return db.AddSpend(ctx, payer, window, evm.NewAmount(1_000), max) }); wins != 30 {
			t.Fatalf("%d of 40 payments admitted under the cap, want 30", wins)
		}
		if ok, _ := db.AddSpend(ctx, payer, window, evm.NewAmount(1), max); ok {
			t.Fatal("a payment past the cap was admitted")
		}
		// A payment that was not settled is given back, and makes room.
		if err := db.RefundSpend(ctx, payer, window, evm.NewAmount(1_000)); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.AddSpend(ctx, payer, window, evm.NewAmount(1_000), max); !ok || err != nil {
			t.Fatalf("after a refund: %v %v", ok, err)
		}
		// Refunds never go below zero.
		if err := db.RefundSpend(ctx, payer, window, evm.NewAmount(1_000_000)); err != nil {
			t.Fatal(err)
		}
		if s, _ := db.Spent(ctx, payer, window); !s.IsZero() {
			t.Fatalf("spent %s after an over-refund", s)
		}
		// A new window starts from zero and forgets the old one.
		next := window.Add(time.Hour)
		if ok, _ := db.AddSpend(ctx, payer, next, evm.NewAmount(30_000), max); !ok {
			t.Fatal("a new window is not empty")
		}
		if s, _ := db.Spent(ctx, payer, window); !s.IsZero() {
			t.Fatalf("the old window kept %s", s)
		}
	})
}

func TestSellerRecords(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		alice, bob := common.HexToAddress("0xA11CE"), common.HexToAddress("0xB0B")
		usd, eur := common.HexToAddress("0xD011A4"), common.HexToAddress("0xE040")
		at := time.UnixMilli(1_800_000_000_000)
		if known, _ := db.Known(ctx, alice); known {
			t.Fatal("a new payer is known")
		}
		pay := func(key store.Key, payer common.Address, route string, asset common.Address, amount uint64, status int) {
			t.Helper()
			if err := db.RecordPayment(ctx, store.SellerPayment{Key: key, At: at, Payer: payer, Route: route, Asset: asset,
				Amount: evm.NewAmount(amount), Tx: "0xabc", Status: status}); err != nil {
				t.Fatal(err)
			}
		}
		k1 := newKey()
		pay(k1, alice, "GET /a", usd, 100, 200)
		pay(k1, alice, "GET /a", usd, 100, 200) // the same payment again counts once
		pay(newKey(), alice, "GET /a", usd, 50, 200)
		pay(newKey(), alice, "GET /b", eur, 7, 200)
		pay(newKey(), bob, "POST /c", usd, 10, 502) // settled before the handler failed
		if err := db.RecordRequests(ctx, alice, 2, at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if known, _ := db.Known(ctx, alice); !known {
			t.Fatal("a payer with payments is not known")
		}

		payers, err := db.Payers(ctx, 0)
		if err != nil || len(payers) != 2 {
			t.Fatalf("payers %+v, %v", payers, err)
		}
		a := payers[0]
		if a.Payer != alice || a.Requests != 5 || a.Payments != 3 || !a.LastSeen.Equal(at.Add(time.Second)) || len(a.Paid) != 2 {
			t.Fatalf("alice %+v", a)
		}
		for _, p := range a.Paid {
			want := map[common.Address]uint64{usd: 150, eur: 7}[p.Asset]
			if p.Amount.Cmp(evm.NewAmount(want)) != 0 {
				t.Fatalf("alice paid %s of %s, want %d", p.Amount, p.Asset, want)
			}
		}
		if b := payers[1]; b.Requests != 0 || b.Payments != 1 {
			t.Fatalf("bob (paid, not served) %+v", b)
		}

		rev, err := db.Revenue(ctx)
		if err != nil || len(rev) != 3 || rev[0].Route != "GET /a" || rev[0].Payments != 2 || rev[0].Total.Cmp(evm.NewAmount(150)) != 0 {
			t.Fatalf("revenue %+v, %v", rev, err)
		}
		unserved, err := db.Payments(ctx, store.PaymentFilter{Unserved: true})
		if err != nil || len(unserved) != 1 || unserved[0].Payer != bob || unserved[0].Status != 502 {
			t.Fatalf("unserved %+v, %v", unserved, err)
		}
		if all, _ := db.Payments(ctx, store.PaymentFilter{}); len(all) != 4 {
			t.Fatalf("%d payments recorded, want 4", len(all))
		}

		if err := db.BlockPayer(ctx, bob, "chargeback"); err != nil {
			t.Fatal(err)
		}
		carol := common.HexToAddress("0xCA401")
		if err := db.BlockPayer(ctx, carol, "spam"); err != nil { // never paid
			t.Fatal(err)
		}
		for _, tc := range []struct {
			payer   common.Address
			blocked bool
		}{{alice, false}, {bob, true}, {carol, true}} {
			if b, err := db.Blocked(ctx, tc.payer); err != nil || b != tc.blocked {
				t.Fatalf("Blocked(%s) = %v, %v", tc.payer, b, err)
			}
		}
		if known, _ := db.Known(ctx, carol); known {
			t.Fatal("a blocked payer that never paid is known")
		}
		if err := db.UnblockPayer(ctx, bob); err != nil {
			t.Fatal(err)
		}
		if b, _ := db.Blocked(ctx, bob); b {
			t.Fatal("unblocked payer still blocked")
		}

		for i, reason := range []string{"quid_payer_blocked", "quid_rate_limited"} {
			if err := db.RecordRefusal(ctx, store.Refusal{At: at.Add(time.Duration(i) * time.Second), Payer: carol, Route: "GET /a", Reason: reason, Status: 403}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.RecordRefusal(ctx, store.Refusal{At: at.Add(time.Hour), Route: "GET /a", Reason: "quid_capability_invalid", Status: 402}); err != nil {
			t.Fatal(err)
		}
		refusals, err := db.Refusals(ctx, 2)
		if err != nil || len(refusals) != 2 || refusals[0].Reason != "quid_capability_invalid" || refusals[0].Payer != (common.Address{}) || refusals[1].Payer != carol {
			t.Fatalf("refusals %+v, %v", refusals, err)
		}
		if err := db.PruneRefusals(ctx, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if left, _ := db.Refusals(ctx, 0); len(left) != 1 {
			t.Fatalf("%d refusals after pruning, want 1", len(left))
		}
	})
}

// Concurrent payments of one payer are all counted: the totals are read and written under a
// row lock.
func TestRecordPaymentConcurrently(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		payer, asset := common.HexToAddress("0xA11CE"), common.HexToAddress("0xD011A4")
		race(t, 40, func(int) (bool, error) {
			return true, db.RecordPayment(ctx, store.SellerPayment{Key: newKey(), At: time.Now(), Payer: payer, Route: "GET /a",
				Asset: asset, Amount: evm.NewAmount(5), Status: 200})
		})
		rev, err := db.Revenue(ctx)
		if err != nil || len(rev) != 1 || rev[0].Payments != 40 || rev[0].Total.Cmp(evm.NewAmount(200)) != 0 {
			t.Fatalf("revenue %+v, %v", rev, err)
		}
	})
}
