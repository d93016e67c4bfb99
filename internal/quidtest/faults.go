package quidtest

import (
	"context"
	"math/big"
	"net"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/quidpay/quid/facilitator"
)

// Backend is the chain a Faults wraps: everything the facilitator may ask of a JSON-RPC endpoint.
// *ethclient.Client has it.
type Backend interface {
	facilitator.Chain
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// Method names a call of Backend, for Faults.Set and Faults.Calls.
type Method string

// The methods a Faults can disturb.
const (
	CodeAt             Method = "CodeAt"
	CallContract       Method = "CallContract"
	EstimateGas        Method = "EstimateGas"
	PendingNonceAt     Method = "PendingNonceAt"
	NonceAt            Method = "NonceAt"
	SuggestGasTipCap   Method = "SuggestGasTipCap"
	HeaderByNumber     Method = "HeaderByNumber"
	SendTransaction    Method = "SendTransaction"
	TransactionReceipt Method = "TransactionReceipt"
	TransactionByHash  Method = "TransactionByHash"
	FilterLogs         Method = "FilterLogs"
)

// Methods lists every Method.
var Methods = []Method{CodeAt, CallContract, EstimateGas, PendingNonceAt, NonceAt, SuggestGasTipCap,
	HeaderByNumber, SendTransaction, TransactionReceipt, TransactionByHash, FilterLogs}

// Fault is what happens to the calls of one method. The zero Fault changes nothing.
type Fault struct {
	// Delay holds the call back first (less if the caller's context ends sooner, which then
	// fails the call with the context's error and forwards nothing).
	Delay time.Duration
	// Drop never answers: the call blocks until the caller's context ends and forwards nothing,
	// as a request lost on the network. Only use it with a context that ends.
	Drop bool
	// Hook runs just before the call would be forwarded (after Delay), in the caller's goroutine:
	// a test does there what the world does meanwhile (another party's transaction, say).
	Hook func()
	// Err fails the call without forwarding it, unless After is set.
	Err error
	// After forwards the call and then fails it with Err anyway: the node did the work but the
	// answer was lost (a send accepted, then a read timeout).
	After bool
	// Receipt rewrites the receipts TransactionReceipt returns (a copy; the chain is untouched).
	Receipt func(*types.Receipt) *types.Receipt
	// Logs rewrites the logs FilterLogs returns.
	Logs func([]types.Log) []types.Log
	// Skip lets the next Skip calls through untouched before the fault applies.
	Skip int
	// Times limits the fault to the next Times calls (after Skip); 0 means until cleared.
	Times int
}

// Faults is a facilitator.Chain that forwards to a real chain, except where a test told it to
// fail, delay, drop or alter a call. It counts every call. It is safe for concurrent use.
type Faults struct {
	// Backend forwards, untouched and uncounted, any method of facilitator.Chain that Faults
	// does not know yet.
	Backend
	inner Backend

	mu        sync.Mutex
	faults    map[Method]*Fault
	fallback  *Fault // for methods without their own fault
	calls     map[Method]int
	forwarded map[Method]int
	failed    map[Method]int // forwarded calls the chain itself answered with an error
	sent      []common.Hash
}

var _ Backend = (*Faults)(nil)

// NewFaults wraps inner.
func NewFaults(inner Backend) *Faults {
	return &Faults{Backend: inner, inner: inner, faults: map[Method]*Fault{}, calls: map[Method]int{},
		forwarded: map[Method]int{}, failed: map[Method]int{}}
}

// DeadChain returns a chain on which every call fails with a transport error, as an endpoint
// that is down.
func DeadChain() *Faults {
	f := NewFaults(nil)
	f.FailAll(TransportError())
	return f
}

// NewFaultyEnv is NewEnv with the facilitator reaching the chain through a Faults. The test's
// own helpers (Balance, Fund, Send, Cancel) use the chain directly.
func NewFaultyEnv(t testing.TB, opts Options) (*Env, *Faults) {
	t.Helper()
	var faults *Faults
	user := opts.Facilitator
	opts.Facilitator = func(cfg *facilitator.Config) {
		inner, ok := cfg.Chain.(Backend)
		if !ok {
			t.Fatalf("quidtest: chain %T cannot be wrapped", cfg.Chain)
		}
		faults = NewFaults(inner)
		cfg.Chain = faults
		if user != nil {
			user(cfg)
		}
	}
	return NewEnv(t, opts), faults
}

// Set installs fault for m, replacing any other.
func (f *Faults) Set(m Method, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[m] = &fault
}

// Clear removes m's fault.
func (f *Faults) Clear(m Method) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.faults, m)
}

// FailAll makes every method without a fault of its own fail with err. A nil err heals the
// chain again.
func (f *Faults) FailAll(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fallback = nil
	if err != nil {
		f.fallback = &Fault{Err: err}
	}
}

// Heal removes every fault.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults, f.fallback = map[Method]*Fault{}, nil
}

// Calls returns how many times m was called, forwarded or not.
func (f *Faults) Calls(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

// Forwarded returns how many calls of m reached the chain.
func (f *Faults) Forwarded(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forwarded[m]
}

// ChainErrors returns how many forwarded calls of m the chain itself answered with an error
// (a revert, "nonce too low"), not counting the errors Faults made up.
func (f *Faults) ChainErrors(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed[m]
}

// Sent returns the hashes of the transactions forwarded to the chain, in order.
func (f *Faults) Sent() []common.Hash {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]common.Hash(nil), f.sent...)
}

// take counts a call of m and returns the fault that applies to it.
func (f *Faults) take(m Method) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
	p := f.faults[m]
	if p == nil {
		p = f.fallback
	}
	if p == nil {
		return Fault{}
	}
	if p.Skip > 0 {
		p.Skip--
		return Fault{}
	}
	fault := *p
	if p.Times > 0 {
		if p.Times--; p.Times == 0 {
			delete(f.faults, m)
		}
	}
	return fault
}

func (f *Faults) record(m Method, err error, tx *types.Transaction) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwarded[m]++
	if err != nil {
		f.failed[m]++
	}
	if tx != nil && err == nil {
		f.sent = append(f.sent, tx.Hash())
	}
}

// do runs one call of m through its fault.
func do[T any](f *Faults, ctx context.Context, m Method, next func() (T, error)) (T, Fault, error) {
	var zero T
	fault := f.take(m)
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, fault, ctx.Err()
		}
	}
	if fault.Hook != nil {
		fault.Hook()
	}
	if fault.Drop {
		<-ctx.Done()
		return zero, fault, ctx.Err()
	}
	if fault.Err != nil && !fault.After {
		return zero, fault, fault.Err
	}
	v, err := next()
	if fault.Err != nil {
		return zero, fault, fault.Err
	}
	return v, fault, err
}

// CodeAt implements facilitator.Chain.
func (f *Faults) CodeAt(ctx context.Context, account common.Address, block *big.Int) ([]byte, error) {
	v, _, err := do(f, ctx, CodeAt, func() ([]byte, error) {
		v, err := f.inner.CodeAt(ctx, account, block)
		f.record(CodeAt, err, nil)
		return v, err
	})
	return v, err
}

// CallContract implements facilitator.Chain.
func (f *Faults) CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error) {
	v, _, err := do(f, ctx, CallContract, func() ([]byte, error) {
		v, err := f.inner.CallContract(ctx, call, block)
		f.record(CallContract, err, nil)
		return v, err
	})
	return v, err
}

// EstimateGas implements facilitator.Chain.
func (f *Faults) EstimateGas(ctx context.Context, call ethereum.CallMsg) (uint64, error) {
	v, _, err := do(f, ctx, EstimateGas, func() (uint64, error) {
		v, err := f.inner.EstimateGas(ctx, call)
		f.record(EstimateGas, err, nil)
		return v, err
	})
	return v, err
}

// PendingNonceAt implements facilitator.Chain.
func (f *Faults) PendingNonceAt(ctx context.Context, account common.Address) (uint64, error) {
	v, _, err := do(f, ctx, PendingNonceAt, func() (uint64, error) {
		v, err := f.inner.PendingNonceAt(ctx, account)
		f.record(PendingNonceAt, err, nil)
		return v, err
	})
	return v, err
}

// NonceAt implements facilitator.Chain.
func (f *Faults) NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error) {
	v, _, err := do(f, ctx, NonceAt, func() (uint64, error) {
		v, err := f.inner.NonceAt(ctx, account, block)
		f.record(NonceAt, err, nil)
		return v, err
	})
	return v, err
}

// SuggestGasTipCap implements facilitator.Chain.
func (f *Faults) SuggestGasTipCap(ctx context.Context) (*big.Int, error) {
	v, _, err := do(f, ctx, SuggestGasTipCap, func() (*big.Int, error) {
		v, err := f.inner.SuggestGasTipCap(ctx)
		f.record(SuggestGasTipCap, err, nil)
		return v, err
	})
	return v, err
}

// HeaderByNumber implements facilitator.Chain.
func (f *Faults) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	v, _, err := do(f, ctx, HeaderByNumber, func() (*types.Header, error) {
		v, err := f.inner.HeaderByNumber(ctx, number)
		f.record(HeaderByNumber, err, nil)
		return v, err
	})
	return v, err
}

// SendTransaction implements facilitator.Chain.
func (f *Faults) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	_, _, err := do(f, ctx, SendTransaction, func() (struct{}, error) {
		err := f.inner.SendTransaction(ctx, tx)
		f.record(SendTransaction, err, tx)
		return struct{}{}, err
	})
	return err
}

// TransactionReceipt implements facilitator.Chain.
func (f *Faults) TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	r, fault, err := do(f, ctx, TransactionReceipt, func() (*types.Receipt, error) {
		r, err := f.inner.TransactionReceipt(ctx, hash)
		f.record(TransactionReceipt, err, nil)
		return r, err
	})
	if err == nil && r != nil && fault.Receipt != nil {
		cp := *r
		r = fault.Receipt(&cp)
	}
	return r, err
}

// TransactionByHash implements Backend.
func (f *Faults) TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error) {
	type result struct {
		tx      *types.Transaction
		pending bool
	}
	v, _, err := do(f, ctx, TransactionByHash, func() (result, error) {
		tx, pending, err := f.inner.TransactionByHash(ctx, hash)
		f.record(TransactionByHash, err, nil)
		return result{tx, pending}, err
	})
	return v.tx, v.pending, err
}

// FilterLogs implements Backend.
func (f *Faults) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	logs, fault, err := do(f, ctx, FilterLogs, func() ([]types.Log, error) {
		logs, err := f.inner.FilterLogs(ctx, q)
		f.record(FilterLogs, err, nil)
		return logs, err
	})
	if err == nil && fault.Logs != nil {
		logs = fault.Logs(append([]types.Log(nil), logs...))
	}
	return logs, err
}

// Reverted rewrites a receipt to status 0, as if the transaction had reverted.
func Reverted(r *types.Receipt) *types.Receipt {
	r.Status = types.ReceiptStatusFailed
	r.Logs = nil
	return r
}

// WithoutLogs strips a receipt's logs, as a token that returns without reverting or moving
// anything (on a spent nonce, say) would leave it.
func WithoutLogs(r *types.Receipt) *types.Receipt {
	r.Logs = nil
	return r
}

// NoLogs is a Fault.Logs that finds nothing.
func NoLogs([]types.Log) []types.Log { return nil }

// TransportError returns the error of a request that never reached the node: the connection was
// refused, as go-ethereum's HTTP transport reports it. It is not a JSON-RPC answer.
func TransportError() error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1:8545", Err: &net.OpError{
		Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8545},
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

// TimeoutError returns the error of a request that was sent but whose answer never came: a read
// timeout. The node may well have acted on it.
func TimeoutError() error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1:8545", Err: &net.OpError{
		Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8545},
		Err: os.ErrDeadlineExceeded}}
}

// RejectionError is a JSON-RPC error answer from the node, such as "nonce too low": it
// implements go-ethereum's rpc.Error.
type RejectionError struct {
	Code    int
	Message string
}

var _ rpc.Error = (*RejectionError)(nil)

func (e *RejectionError) Error() string  { return e.Message }
func (e *RejectionError) ErrorCode() int { return e.Code }

// Rejection returns a JSON-RPC error answer with the server-error code geth uses for refused
// transactions.
func Rejection(msg string) error { return &RejectionError{Code: -32000, Message: msg} }
