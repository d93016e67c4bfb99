package store_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/pgtest"
	"github.com/quidpay/quid/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends runs a test against SQLite and PostgreSQL alike.
func backends(t *testing.T, test func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "quid.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db, err := store.Open(context.Background(), b.dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			test(t, db)
		})
	}
}

func newKey() store.Key {
	var k store.Key
	rand.Read(k[:])
	return k
}

// race runs f in n goroutines released together and returns how many returned true.
func race(t *testing.T, n int, f func(i int) (bool, error)) int {
	t.Helper()
	var wins atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := f(i)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return int(wins.Load())
}

func TestClaimIsAtomic(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		key := newKey()
		if wins := race(t, 100, func(int) (bool, error) { return db.Claim(ctx, key, time.Now().Add(time.Hour)) }); wins != 1 {
			t.Fatalf("%d of 100 concurrent claims of one key succeeded, want 1", wins)
		}
		if ok, _ := db.Claim(ctx, key, time.Now().Add(time.Hour)); ok {
			t.Fatal("a live claim was claimed again")
		}
		if err := db.Release(ctx, key); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.Claim(ctx, key, time.Now().Add(time.Hour)); !ok {
			t.Fatal("a released claim could not be claimed")
		}
		expired := newKey()
		db.Claim(ctx, expired, time.Now().Add(-time.Second))
		if ok, _ := db.Claim(ctx, expired, time.Now().Add(time.Hour)); !ok {
			t.Fatal("an expired claim could not be claimed")
		}
	})
}

func settlement(key store.Key) *store.Settlement {
	return &store.Settlement{Key: key, State: store.StateVerified, Network: "eip155:31337", Payer: "0xpayer", Asset: "0xasset",
		PayTo: "0xpayto", Amount: evm.NewAmount(10_000), Payment: []byte(`{"p":1}`), Expires: time.Now().Add(time.Minute)}
}

func TestSettlementStateMachine(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		key := newKey()
		if wins := race(t, 50, func(int) (bool, error) {
			created, _, err := db.Create(ctx, settlement(key))
			return created, err
		}); wins != 1 {
			t.Fatalf("%d of 50 concurrent creates succeeded, want 1", wins)
		}
		created, existing, err := db.Create(ctx, settlement(key))
		if err != nil || created || existing == nil || existing.State != store.StateVerified || existing.Amount.String() != "10000" {
			t.Fatalf("second create: %v %+v %v", created, existing, err)
		}

		s := *existing
		s.State, s.Tx, s.RawTx, s.Relayer, s.RelayerNonce = store.StateSubmitted, "0xabc", []byte{1, 2, 3}, "0xrelayer", 7
		if ok, err := db.Update(ctx, &s, store.StateVerified); !ok || err != nil {
			t.Fatalf("verified → submitted: %v %v", ok, err)
		}
		// A stale writer that still believes the settlement is verified must lose.
		stale := s
		stale.State = store.StateFailed
		if ok, _ := db.Update(ctx, &stale, store.StateVerified); ok {
			t.Fatal("compare-and-set accepted a stale state")
		}
		if ok, _ := db.Delete(ctx, key, store.StateVerified); ok {
			t.Fatal("deleted a submitted settlement as if nothing had been sent")
		}
		got, err := db.Get(ctx, key)
		if err != nil || got.State != store.StateSubmitted || got.Tx != "0xabc" || string(got.RawTx) != "\x01\x02\x03" || got.RelayerNonce != 7 {
			t.Fatalf("get: %+v %v", got, err)
		}
		if ok, _ := db.Report(ctx, key); ok {
			t.Fatal("reported a settlement that is not confirmed")
		}
		s.State = store.StateConfirmed
		if ok, _ := db.Update(ctx, &s, store.StateSubmitted); !ok {
			t.Fatal("submitted → confirmed failed")
		}
		if wins := race(t, 20, func(int) (bool, error) { return db.Report(ctx, key) }); wins != 1 {
			t.Fatalf("%d callers told of one success, want 1", wins)
		}
		list, err := db.List(ctx, store.Filter{States: []store.State{store.StateConfirmed}})
		if err != nil || len(list) != 1 || list[0].Key != key || !list[0].Reported {
			t.Fatalf("list: %+v %v", list, err)
		}
		if _, err := db.Get(ctx, newKey()); err != store.ErrNotFound {
			t.Fatalf("get of a missing key: %v", err)
		}
	})
}

func TestDeleteForgetsOnlyUnsentSettlements(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		key := newKey()
		db.Create(ctx, settlement(key))
		if ok, err := db.Delete(ctx, key, store.StateVerified); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if created, _, _ := db.Create(ctx, settlement(key)); !created {
			t.Fatal("a forgotten settlement's payment could not be settled again")
		}
	})
}

func TestLeasesAreExclusive(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for range 40 {
			s := settlement(newKey())
			s.State = store.StateUnknown
			db.Create(ctx, s)
		}
		var mu sync.Mutex
		seen := map[store.Key]int{}
		now := time.Now()
		race(t, 8, func(int) (bool, error) {
			got, err := db.Lease(ctx, []store.State{store.StateUnknown}, now, time.Minute, 10)
			mu.Lock()
			for _, s := range got {
				seen[s.Key]++
			}
			mu.Unlock()
			return false, err
		})
		if len(seen) != 40 {
			t.Errorf("%d settlements leased, want all 40", len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("settlement %x leased %d times at once", k[:4], n)
			}
		}
		if got, _ := db.Lease(ctx, []store.State{store.StateUnknown}, now, time.Minute, 100); len(got) != 0 {
			t.Errorf("%d settlements leased while leases were held", len(got))
		}
		if got, _ := db.Lease(ctx, []store.State{store.StateUnknown}, now.Add(2*time.Minute), time.Minute, 100); len(got) != 40 {
			t.Errorf("%d settlements leased after the leases lapsed, want 40", len(got))
		}
	})
}

func TestReservationsNeverExceedTheBalance(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		scope := newKey()
		balance := evm.NewAmount(50)
		keys := make([]store.Key, 100)
		for i := range keys {
			keys[i] = newKey()
		}
		// A payer holding 50 signs 100 payments of 1: exactly 50 are admitted.
		if wins := race(t, 100, func(i int) (bool, error) {
			return db.Reserve(ctx, scope, keys[i], evm.NewAmount(1), balance, 100, time.Now().Add(time.Minute))
		}); wins != 50 {
			t.Fatalf("%d reservations admitted against a balance of 50", wins)
		}
		if ok, err := db.Reserved(ctx, keys[0]); err != nil {
			t.Fatal(err)
		} else if again, _ := db.Reserve(ctx, scope, keys[0], evm.NewAmount(1), balance, 100, time.Now().Add(time.Minute)); ok != again {
			t.Fatalf("Reserved says %v but Reserve says %v", ok, again)
		}
		if ok, _ := db.Reserved(ctx, newKey()); ok {
			t.Fatal("an unknown key is reserved")
		}
		// Reserving an admitted key again changes nothing.
		var admitted store.Key
		for _, k := range keys {
			if ok, _ := db.Reserve(ctx, scope, k, evm.NewAmount(1), balance, 100, time.Now().Add(time.Minute)); ok {
				admitted = k
				break
			}
		}
		if ok, _ := db.Reserve(ctx, scope, newKey(), evm.NewAmount(1), balance, 100, time.Now().Add(time.Minute)); ok {
			t.Fatal("a re-reservation consumed balance")
		}
		if err := db.Unreserve(ctx, admitted); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.Reserve(ctx, scope, newKey(), evm.NewAmount(1), balance, 100, time.Now().Add(time.Minute)); !ok {
			t.Fatal("released amount not available again")
		}
		// Other payers are unaffected, and lapsed reservations do not count.
		other := newKey()
		if ok, _ := db.Reserve(ctx, other, newKey(), evm.NewAmount(5), evm.NewAmount(5), 100, time.Now().Add(-time.Second)); !ok {
			t.Fatal("another payer's reservation refused")
		}
		if ok, _ := db.Reserve(ctx, other, newKey(), evm.NewAmount(5), evm.NewAmount(5), 100, time.Now().Add(time.Minute)); !ok {
			t.Fatal("a lapsed reservation still counted")
		}
	})
}

func TestSettledReservationsCountUntilTheBalanceShowsThem(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		scope, paid := newKey(), newKey()
		exp := time.Now().Add(time.Minute)
		// A payer holding 10 pays 10; the payment is mined in block 7.
		if ok, _ := db.Reserve(ctx, scope, paid, evm.NewAmount(10), evm.NewAmount(10), 5, exp); !ok {
			t.Fatal("first reservation refused")
		}
		if err := db.Settled(ctx, paid, 7); err != nil {
			t.Fatal(err)
		}
		// A balance read before block 7 still shows the 10: the settled payment must count.
		if ok, _ := db.Reserve(ctx, scope, newKey(), evm.NewAmount(10), evm.NewAmount(10), 6, exp); ok {
			t.Fatal("a balance that predates the settlement admitted a second payment of the same money")
		}
		// A balance read at block 7 or later already shows it spent.
		if ok, _ := db.Reserve(ctx, scope, newKey(), evm.NewAmount(3), evm.NewAmount(3), 7, exp); !ok {
			t.Fatal("a settled payment kept counting against a balance that includes it")
		}
	})
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "quid.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey()
	db.Claim(ctx, key, time.Now().Add(time.Hour))
	db.Create(ctx, settlement(key))
	db.Close()
	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ok, _ := db.Claim(ctx, key, time.Now().Add(time.Hour)); ok {
		t.Fatal("claim lost across a restart")
	}
	if s, err := db.Get(ctx, key); err != nil || s.State != store.StateVerified {
		t.Fatalf("settlement lost across a restart: %v", err)
	}
}

func TestPendingClaimsSurviveAndResume(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		key := newKey()
		if took, _ := db.TakePending(ctx, key); took {
			t.Fatal("took the pending mark of an unclaimed key")
		}
		db.Claim(ctx, key, time.Now().Add(time.Minute))
		if took, _ := db.TakePending(ctx, key); took {
			t.Fatal("took the pending mark of a fresh claim")
		}
		if err := db.SetPending(ctx, key, true, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.Claim(ctx, key, time.Now().Add(time.Hour)); ok {
			t.Fatal("a pending claim was claimed again")
		}
		// Of many requests resuming one payment at once, exactly one may.
		if wins := race(t, 20, func(int) (bool, error) { return db.TakePending(ctx, key) }); wins != 1 {
			t.Fatalf("%d of 20 concurrent resumers took the pending mark, want 1", wins)
		}
	})
}
