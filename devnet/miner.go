package devnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
)

// ErrClosed is returned by a Devnet, and by requests in flight, once Close has been called.
var ErrClosed = errors.New("devnet: closed")

// miner seals blocks on demand. Every way a transaction reaches the pool (the HTTP endpoint,
// RPC and Client) ends in mine before the send is answered, so callers find their receipt at
// once and never call Commit themselves.
//
// One goroutine seals, so commits are serialized. Callers that arrive while a block is being
// sealed, or while the miner waits for the clock, share the next block: n concurrent sends cost
// one block, not n.
type miner struct {
	sim  *simulated.Backend
	node *ethclient.Client // the simulated node's own client: reading blocks must not mine
	lead time.Duration     // how far block time may run ahead of the clock; < 0: no limit

	kick chan struct{} // capacity 1: "there is work"
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	waiting []*mineRequest

	// Owned by the loop goroutine.
	head             common.Hash
	headTime         uint64
	lastTxs, prevTxs map[common.Hash]bool // transactions of the last two sealed blocks
}

type mineRequest struct {
	txs  []common.Hash
	done chan error // capacity 1
}

func newMiner(sim *simulated.Backend, node *ethclient.Client, lead time.Duration, head common.Hash, headTime uint64) *miner {
	m := &miner{
		sim:      sim,
		node:     node,
		lead:     lead,
		kick:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		head:     head,
		headTime: headTime,
	}
	go m.loop()
	return m
}

// mine returns once txs, already accepted by the pool, are in a block, or once the miner has
// determined they cannot be mined now (a nonce gap, or a fee cap below the base fee: such a
// transaction stays pending, as it would on a real chain, until a later block can take it).
func (m *miner) mine(ctx context.Context, txs []common.Hash) error {
	if len(txs) == 0 {
		return nil
	}
	req := &mineRequest{txs: txs, done: make(chan error, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.waiting = append(m.waiting, req)
	m.mu.Unlock()

	select {
	case m.kick <- struct{}{}:
	default: // a kick is already pending; the loop will take this request with it
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the transaction is still mined; only the caller stopped waiting
	}
}

// enqueue asks for txs to be mined without waiting for it.
func (m *miner) enqueue(txs []common.Hash) {
	req := &mineRequest{txs: txs, done: make(chan error, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.waiting = append(m.waiting, req)
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// stop ends the loop and fails every request still waiting.
func (m *miner) stop() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	close(m.quit)
	<-m.done
	for _, req := range m.take() {
		req.done <- ErrClosed
	}
}

func (m *miner) take() []*mineRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	reqs := m.waiting
	m.waiting = nil
	return reqs
}

func (m *miner) loop() {
	defer close(m.done)
	for {
		select {
		case <-m.quit:
			return
		case <-m.kick:
		}
		// Wait for the clock before taking the batch, so that everything sent meanwhile
		// rides in the same block.
		if !m.waitForClock() {
			return
		}
		batch := m.take()
		err := m.seal(batch)
		for _, req := range batch {
			req.done <- err
		}
	}
}

// seal commits blocks until every transaction in batch is mined or no more can be.
func (m *miner) seal(batch []*mineRequest) error {
	want := make(map[common.Hash]bool)
	for _, req := range batch {
		for _, h := range req.txs {
			// A transaction sent just before a commit can be sealed before its sender
			// asks for it; it needs no second (empty) block.
			if !m.lastTxs[h] && !m.prevTxs[h] {
				want[h] = true
			}
		}
	}
	for len(want) > 0 {
		head := m.sim.Commit()
		if head == m.head {
			return errors.New("devnet: the simulated beacon failed to seal a block")
		}
		block, err := m.node.BlockByHash(context.Background(), head)
		if err != nil {
			return fmt.Errorf("devnet: read sealed block: %w", err)
		}
		m.head, m.headTime = head, block.Time()
		m.prevTxs, m.lastTxs = m.lastTxs, make(map[common.Hash]bool, len(block.Transactions()))
		for _, tx := range block.Transactions() {
			m.lastTxs[tx.Hash()] = true
			delete(want, tx.Hash())
		}
		if len(block.Transactions()) == 0 {
			return nil // what is left cannot be mined now
		}
		// Some wanted transactions missed a block that made progress: it was full, or the
		// pool had not yet promoted them (go-ethereum's pool can leave the tail of a burst
		// from one sender queued when a forced reset races its promotions). Seal another.
		if len(want) > 0 && !m.waitForClock() {
			return ErrClosed
		}
	}
	return nil
}

// waitForClock delays the next block until its timestamp is at most lead ahead of the wall
// clock, and reports false if the miner is stopped meanwhile.
//
// The simulated beacon stamps a block with the current unix second, or with its parent's
// timestamp plus one when that is later, because timestamps must strictly increase. So a chain
// that seals more than one block a second runs ahead of the clock, without bound: a benchmark
// settling payments one at a time would soon have block.timestamp minutes in the future, and the
// token would reject every EIP-3009 authorization as expired although the facilitator, which
// checks against real time, found it valid. Holding blocks back instead costs at most a second
// of latency, and batches whatever arrives meanwhile into one block, as a real chain does.
func (m *miner) waitForClock() bool {
	if m.lead < 0 {
		return true
	}
	earliest := time.Unix(int64(m.headTime)+1, 0).Add(-m.lead)
	wait := time.Until(earliest)
	if wait <= 0 {
		return true
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-m.quit:
		return false
	}
}
