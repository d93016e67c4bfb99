package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/pgtest"
	"github.com/quidpay/quid/store"
)

// benchBackends runs a benchmark against SQLite and PostgreSQL. The throwaway PostgreSQL runs
// with fsync off, SQLite with synchronous=FULL: compare each with itself across changes, not
// the two with each other.
func benchBackends(b *testing.B, bench func(b *testing.B, db *store.DB)) {
	for _, bk := range []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "quid.db") }},
		{"postgres", func(b *testing.B) string { return pgtest.DSN(b) }},
	} {
		b.Run(bk.name, func(b *testing.B) {
			db, err := store.Open(context.Background(), bk.dsn(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			bench(b, db)
		})
	}
}

func BenchmarkClaim(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, err := db.Claim(ctx, newKey(), exp); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	})
}

// BenchmarkReserve measures a reservation and its release.
func BenchmarkReserve(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		balance := evm.NewAmount(1 << 62)
		b.RunParallel(func(pb *testing.PB) {
			scope := newKey() // one payer per goroutine, as with many payers
			for pb.Next() {
				// A payment's life in the store: reserved at verify, released when it settles.
				key := newKey()
				if ok, err := db.Reserve(ctx, scope, key, evm.NewAmount(1), balance, 1, exp); !ok || err != nil {
					b.Fatal(ok, err)
				}
				if err := db.Unreserve(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
