package paywall

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// countingRecords is a Records that only counts RecordRequests calls.
type countingRecords struct {
	Records
	mu     sync.Mutex
	writes int
	n      map[common.Address]uint64
	last   map[common.Address]time.Time
	fail   bool
}

func (c *countingRecords) RecordRequests(_ context.Context, payer common.Address, n uint64, last time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.fail {
		return errors.New("store down")
	}
	c.n[payer] += n
	if last.After(c.last[payer]) {
		c.last[payer] = last
	}
	return nil
}

// Requests of many goroutines are all counted, in one write per payer per flush.
func TestTallyCountsEveryRequestInFewWrites(t *testing.T) {
	t.Parallel()
	rec := &countingRecords{n: map[common.Address]uint64{}, last: map[common.Address]time.Time{}}
	tl := &tally{records: rec, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	alice, bob := common.Address{1}, common.Address{2}
	at := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			payer := alice
			if i%4 == 0 {
				payer = bob
			}
			tl.add(payer, at.Add(time.Duration(i)*time.Millisecond))
		})
	}
	wg.Wait()
	tl.flush()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.n[alice] != 75 || rec.n[bob] != 25 {
		t.Fatalf("counted %d for alice and %d for bob, want 75 and 25", rec.n[alice], rec.n[bob])
	}
	if !rec.last[alice].Equal(at.Add(99*time.Millisecond)) || !rec.last[bob].Equal(at.Add(96*time.Millisecond)) {
		t.Fatalf("last seen %v and %v", rec.last[alice], rec.last[bob])
	}
	if rec.writes > 4 { // one per payer, plus one per payer if the scheduled flush ran first
		t.Fatalf("%d writes for 100 requests of 2 payers", rec.writes)
	}
}

// A failed write is logged and dropped; the next requests are counted afresh.
func TestTallyDropsWhatItCannotWrite(t *testing.T) {
	t.Parallel()
	rec := &countingRecords{n: map[common.Address]uint64{}, last: map[common.Address]time.Time{}, fail: true}
	tl := &tally{records: rec, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	payer := common.Address{1}
	tl.add(payer, time.Unix(1, 0))
	tl.flush()
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	tl.add(payer, time.Unix(2, 0))
	tl.flush()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.n[payer] != 1 {
		t.Fatalf("counted %d, want the one request after the store came back", rec.n[payer])
	}
}
