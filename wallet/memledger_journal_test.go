package wallet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/store"
)

// A MemoryLedger keeps a bounded journal: the oldest entries go, numbering and chaining carry on,
// and verification covers the entries kept from the head before them.
func TestMemoryJournalIsBoundedAndStillVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ledger := NewMemoryLedger()
	ledger.JournalLimit = 8
	w, err := New(Config{Address: common.Address{0xa}, Ledger: ledger})
	if err != nil {
		t.Fatal(err)
	}
	var heads []JournalHead
	for i := range 30 {
		e, err := ledger.AppendJournal(ctx, store.JournalEntry{Wallet: w.ID(), Time: time.Unix(int64(i), 0), Kind: "paid", Detail: "entry"})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d numbered %d", i+1, e.Seq)
		}
		heads = append(heads, JournalHead{Seq: e.Seq, Hash: e.Hash})
	}
	entries, err := w.Journal(ctx, store.JournalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 8 || entries[len(entries)-1].Seq != 30 {
		t.Fatalf("kept %d entries ending at %d, want at most 8 ending at 30", len(entries), entries[len(entries)-1].Seq)
	}
	if n, err := w.VerifyJournal(ctx); err != nil || n != len(entries) {
		t.Fatalf("verify: %d entries, %v", n, err)
	}
	if head, err := w.VerifyJournalFrom(ctx, heads[27]); err != nil || head != heads[29] {
		t.Fatalf("verify from a kept anchor: %v %v", head, err)
	}
	if _, err := w.VerifyJournalFrom(ctx, JournalHead{Seq: 28, Hash: heads[26].Hash}); !errors.Is(err, ErrJournalTampered) {
		t.Fatalf("a wrong anchor: %v", err)
	}
	if _, err := w.VerifyJournalFrom(ctx, JournalHead{Seq: 31}); !errors.Is(err, ErrJournalTampered) {
		t.Fatalf("an anchor past the end: %v", err)
	}
	// An edit inside the kept window is still caught.
	ledger.mu.Lock()
	ledger.journal[w.ID()][2].Detail = "edited"
	ledger.mu.Unlock()
	if _, err := w.VerifyJournal(ctx); !errors.Is(err, ErrJournalTampered) {
		t.Fatalf("an edited entry verified: %v", err)
	}
}
