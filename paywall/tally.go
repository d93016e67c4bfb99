package paywall

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// tallyDelay is how long requests served on capability tokens are counted in memory before they
// are written to Records together. The count is for the admin's view, not money: a process
// killed meanwhile loses at most this much of it, and a token request costs no write.
const tallyDelay = time.Second

// tally counts requests served on capability tokens per payer and records them in one write per
// payer about once every tallyDelay.
type tally struct {
	records Records
	log     *slog.Logger

	mu      sync.Mutex
	pending map[common.Address]*tallied
	timer   bool // a flush is scheduled
}

type tallied struct {
	n    uint64
	last time.Time
}

// add counts one request of payer at at.
func (t *tally) add(payer common.Address, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = make(map[common.Address]*tallied)
	}
	c := t.pending[payer]
	if c == nil {
		c = &tallied{}
		t.pending[payer] = c
	}
	c.n++
	if at.After(c.last) {
		c.last = at
	}
	if !t.timer {
		t.timer = true
		time.AfterFunc(tallyDelay, t.flush)
	}
}

// flush writes every pending count. A count that could not be written is dropped and logged.
func (t *tally) flush() {
	t.mu.Lock()
	pending := t.pending
	t.pending, t.timer = nil, false
	t.mu.Unlock()
	for payer, c := range pending {
		if err := t.records.RecordRequests(context.Background(), payer, c.n, c.last); err != nil {
			t.log.Error("recording requests served on capability tokens", "payer", payer.Hex(), "requests", c.n, "err", err)
		}
	}
}
