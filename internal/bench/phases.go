package bench

import (
	"cmp"
	"context"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Where a paid request's time goes, measured in the same run: quid's parts are reached through
// interfaces (paywall.Facilitator, facilitator.Chain, the store), so the bench wraps each and
// times every call that ends in the measured window. A wrapper costs two clock reads and a lock
// per call.

// phaseRecorder collects the latencies of named calls that end in the window.
type phaseRecorder struct {
	mu       sync.Mutex
	from, to time.Time
	h        map[string]*hist
	order    []string
}

func (p *phaseRecorder) window(from, to time.Time) {
	p.mu.Lock()
	p.from, p.to = from, to
	p.mu.Unlock()
}

// since records the call name that began at t0 and ends now.
func (p *phaseRecorder) since(name string, t0 time.Time) {
	t1 := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.from.IsZero() || t1.Before(p.from) || t1.After(p.to) {
		return
	}
	if p.h == nil {
		p.h = map[string]*hist{}
	}
	h, ok := p.h[name]
	if !ok {
		h = &hist{}
		p.h[name] = h
		p.order = append(p.order, name)
	}
	h.record(t1.Sub(t0))
}

// phases returns the calls, the facilitator's first, then the RPCs and the store's, each with
// its count per operation.
func (p *phaseRecorder) phases(ops int64) []Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := slices.Clone(p.order)
	rank := func(n string) int {
		switch {
		case strings.HasPrefix(n, "facilitator."):
			return 0
		case strings.HasPrefix(n, "rpc "):
			return 1
		}
		return 2
	}
	slices.SortStableFunc(names, func(a, b string) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	out := make([]Phase, 0, len(names))
	for _, name := range names {
		ph := phaseOf(name, p.h[name])
		if ops > 0 {
			ph.PerOp = float64(ph.N) / float64(ops)
		}
		out = append(out, ph)
	}
	return out
}

// timedFacilitator times the paywall's calls to its facilitator.
type timedFacilitator struct {
	f   paywall.Facilitator
	rec *phaseRecorder
}

func (t timedFacilitator) Verify(ctx context.Context, p *x402.PaymentPayload, r x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	defer t.rec.since("facilitator.Verify", time.Now())
	return t.f.Verify(ctx, p, r)
}

func (t timedFacilitator) Settle(ctx context.Context, p *x402.PaymentPayload, r x402.PaymentRequirements) (*x402.SettleResponse, error) {
	defer t.rec.since("facilitator.Settle", time.Now())
	return t.f.Settle(ctx, p, r)
}

// timedChain times the facilitator's JSON-RPC calls, named by their method.
type timedChain struct {
	c   facilitator.Chain
	rec *phaseRecorder
}

var _ facilitator.Chain = timedChain{}

func (t timedChain) CodeAt(ctx context.Context, a common.Address, n *big.Int) ([]byte, error) {
	defer t.rec.since("rpc eth_getCode", time.Now())
	return t.c.CodeAt(ctx, a, n)
}

func (t timedChain) CallContract(ctx context.Context, call ethereum.CallMsg, n *big.Int) ([]byte, error) {
	defer t.rec.since("rpc eth_call", time.Now())
	return t.c.CallContract(ctx, call, n)
}

func (t timedChain) EstimateGas(ctx context.Context, call ethereum.CallMsg) (uint64, error) {
	defer t.rec.since("rpc eth_estimateGas", time.Now())
	return t.c.EstimateGas(ctx, call)
}

func (t timedChain) PendingNonceAt(ctx context.Context, a common.Address) (uint64, error) {
	defer t.rec.since("rpc eth_getTransactionCount", time.Now())
	return t.c.PendingNonceAt(ctx, a)
}

func (t timedChain) NonceAt(ctx context.Context, a common.Address, n *big.Int) (uint64, error) {
	defer t.rec.since("rpc eth_getTransactionCount", time.Now())
	return t.c.NonceAt(ctx, a, n)
}

func (t timedChain) SuggestGasTipCap(ctx context.Context) (*big.Int, error) {
	defer t.rec.since("rpc eth_maxPriorityFeePerGas", time.Now())
	return t.c.SuggestGasTipCap(ctx)
}

func (t timedChain) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	defer t.rec.since("rpc eth_getBlockByNumber", time.Now())
	return t.c.HeaderByNumber(ctx, n)
}

func (t timedChain) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	defer t.rec.since("rpc eth_sendRawTransaction", time.Now())
	return t.c.SendTransaction(ctx, tx)
}

func (t timedChain) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	defer t.rec.since("rpc eth_getTransactionReceipt", time.Now())
	return t.c.TransactionReceipt(ctx, h)
}

func (t timedChain) TransactionByHash(ctx context.Context, h common.Hash) (*types.Transaction, bool, error) {
	defer t.rec.since("rpc eth_getTransactionByHash", time.Now())
	return t.c.TransactionByHash(ctx, h)
}

func (t timedChain) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	defer t.rec.since("rpc eth_getLogs", time.Now())
	return t.c.FilterLogs(ctx, q)
}

// timedStore times the SQLite store's calls made per payment; the rest pass through.
type timedStore struct {
	*store.DB
	rec *phaseRecorder
}

func (t timedStore) Claim(ctx context.Context, k store.Key, exp time.Time) (bool, error) {
	defer t.rec.since("SQLite Claim", time.Now())
	return t.DB.Claim(ctx, k, exp)
}

func (t timedStore) Release(ctx context.Context, k store.Key) error {
	defer t.rec.since("SQLite Release", time.Now())
	return t.DB.Release(ctx, k)
}

func (t timedStore) Reserve(ctx context.Context, scope, key store.Key, amount, balance evm.Amount, asOf uint64, expires time.Time) (bool, error) {
	defer t.rec.since("SQLite Reserve", time.Now())
	return t.DB.Reserve(ctx, scope, key, amount, balance, asOf, expires)
}

func (t timedStore) Settled(ctx context.Context, k store.Key, block uint64) error {
	defer t.rec.since("SQLite Settled", time.Now())
	return t.DB.Settled(ctx, k, block)
}

func (t timedStore) Unreserve(ctx context.Context, k store.Key) error {
	defer t.rec.since("SQLite Unreserve", time.Now())
	return t.DB.Unreserve(ctx, k)
}

func (t timedStore) Create(ctx context.Context, s *store.Settlement) (bool, *store.Settlement, error) {
	defer t.rec.since("SQLite Create", time.Now())
	return t.DB.Create(ctx, s)
}

func (t timedStore) Update(ctx context.Context, s *store.Settlement, from store.State) (bool, error) {
	defer t.rec.since("SQLite Update", time.Now())
	return t.DB.Update(ctx, s, from)
}

func (t timedStore) Delete(ctx context.Context, k store.Key, from store.State) (bool, error) {
	defer t.rec.since("SQLite Delete", time.Now())
	return t.DB.Delete(ctx, k, from)
}

func (t timedStore) Report(ctx context.Context, k store.Key) (bool, error) {
	defer t.rec.since("SQLite Report", time.Now())
	return t.DB.Report(ctx, k)
}

func (t timedStore) Get(ctx context.Context, k store.Key) (*store.Settlement, error) {
	defer t.rec.since("SQLite Get", time.Now())
	return t.DB.Get(ctx, k)
}

// timedDeferrer is a timedFacilitator that can also defer, for SettleDeferred routes.
type timedDeferrer struct {
	timedFacilitator
	d paywall.Deferrer
}

var _ paywall.Deferrer = timedDeferrer{}

func (t timedDeferrer) Defer(ctx context.Context, p *x402.PaymentPayload, r x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	defer t.rec.since("facilitator.Defer", time.Now())
	return t.d.Defer(ctx, p, r)
}

func (t timedDeferrer) Release(ctx context.Context, key store.Key) error {
	defer t.rec.since("facilitator.Release", time.Now())
	return t.d.Release(ctx, key)
}

func (t timedDeferrer) Cancel(ctx context.Context, key store.Key) (bool, error) {
	defer t.rec.since("facilitator.Cancel", time.Now())
	return t.d.Cancel(ctx, key)
}

func (t timedStore) SetPending(ctx context.Context, k store.Key, pending bool, expires time.Time) error {
	defer t.rec.since("SQLite SetPending", time.Now())
	return t.DB.SetPending(ctx, k, pending, expires)
}

func (t timedStore) TakePending(ctx context.Context, k store.Key) (bool, error) {
	defer t.rec.since("SQLite TakePending", time.Now())
	return t.DB.TakePending(ctx, k)
}

func (t timedStore) Hold(ctx context.Context, k store.Key, until time.Time) error {
	defer t.rec.since("SQLite Hold", time.Now())
	return t.DB.Hold(ctx, k, until)
}

func (t timedStore) Lease(ctx context.Context, states []store.State, now time.Time, dur time.Duration, limit int) ([]store.Settlement, error) {
	defer t.rec.since("SQLite Lease", time.Now())
	return t.DB.Lease(ctx, states, now, dur, limit)
}
