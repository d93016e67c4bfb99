package store

import (
	"context"
	"errors"
	"time"

	"github.com/quidpay/quid/evm"
)

// State is a settlement's place in its state machine:
//
//	verified → submitted(tx) → confirmed | failed | unknown
//	unknown  → confirmed | failed            (by the reconciler, from the receipt and the chain)
//	queued   → submitted(batch tx) → …       (deferred payments, settled many per transaction)
//
// A settlement is persisted in each state before the external effect that leaves it, so a
// process killed at any point leaves a record of everything it may have sent.
type State string

// Settlement states.
const (
	StateVerified  State = "verified"  // claimed and reserved; nothing sent yet
	StateSubmitted State = "submitted" // transaction signed and persisted, broadcast under way
	StateConfirmed State = "confirmed" // receipt with the expected transfer seen
	StateFailed    State = "failed"    // definitively not paid
	StateUnknown   State = "unknown"   // broadcast, outcome not yet known
	StateQueued    State = "queued"    // verified and reserved, waiting for a batch
)

// Terminal reports whether no further transition can happen.
func (s State) Terminal() bool { return s == StateConfirmed || s == StateFailed }

// Settlement is the durable record of one payment's settlement.
type Settlement struct {
	Key     Key
	State   State
	Network string
	Payer   string
	Asset   string
	PayTo   string
	Amount  evm.Amount
	// Payment is the rail's own encoding of what it needs to submit or reconcile the payment.
	Payment []byte
	// Tx is the settlement transaction's hash; RawTx its signed bytes, kept so that a transaction
	// the node never heard of can be sent again byte for byte, never re-signed.
	Tx           string
	RawTx        []byte
	Relayer      string
	RelayerNonce uint64
	Reason       string
	// Reported is set once a caller has been told the settlement succeeded; only one is.
	Reported bool
	Expires  time.Time
	Created  time.Time
	Updated  time.Time
}

// Filter selects settlements to list.
type Filter struct {
	States []State
	Limit  int
}

// Settlements persists settlements.
type Settlements interface {
	// Create inserts s if no settlement has its key, and reports whether it did; otherwise it
	// returns the existing one. This is the facilitator's claim and must be atomic: of any number
	// of concurrent creates of one key, in any process sharing the store, exactly one succeeds.
	Create(ctx context.Context, s *Settlement) (created bool, existing *Settlement, err error)

	// Update writes s if the stored settlement is still in state from, and reports whether it
	// was: a compare-and-set, so two processes cannot both move one settlement forward.
	Update(ctx context.Context, s *Settlement, from State) (bool, error)

	// Delete removes a settlement that is still in state from. Only a settlement that provably
	// moved no value (nothing was broadcast) is deleted, which makes its payment usable again.
	Delete(ctx context.Context, key Key, from State) (bool, error)

	// Report marks a confirmed settlement as reported and says whether this call did so: exactly
	// one caller learns that a payment succeeded.
	Report(ctx context.Context, key Key) (bool, error)

	// Get returns a settlement, or ErrNotFound.
	Get(ctx context.Context, key Key) (*Settlement, error)

	// List returns settlements, most recently updated first.
	List(ctx context.Context, f Filter) ([]Settlement, error)

	// Lease hands out up to limit settlements in the given states that no one holds a lease on,
	// leasing them until now+d. Two processes never hold a lease on one settlement at once
	// (FOR UPDATE SKIP LOCKED on PostgreSQL; a single writer on SQLite).
	Lease(ctx context.Context, states []State, now time.Time, d time.Duration, limit int) ([]Settlement, error)

	// Hold keeps a settlement out of leases until until; the zero time hands it back at once.
	Hold(ctx context.Context, key Key, until time.Time) error
}

// Reservations holds amounts promised against a payer's balance until the balance reflects them.
type Reservations interface {
	// Reserve admits amount for key against scope (a payer's balance of one asset on one chain)
	// only if the scope's outstanding reservations plus amount do not exceed balance, and reports
	// whether it did. balance is as of block asOf: reservations settled in a later block are
	// outstanding, since that balance does not show them yet, and so are all unsettled ones.
	// Check and insert are one atomic step across every process sharing the store. Reserving a
	// key that is already reserved reports true and changes nothing. Reservations lapse at
	// expires, when the payment can no longer be settled.
	Reserve(ctx context.Context, scope, key Key, amount, balance evm.Amount, asOf uint64, expires time.Time) (bool, error)

	// Reserved reports whether key holds a live reservation, so a caller can skip reading a
	// balance it would only need to make one.
	Reserved(ctx context.Context, key Key) (bool, error)

	// Settled records that key's payment was mined in block, after which balances read at that
	// block or later include it.
	Settled(ctx context.Context, key Key, block uint64) error

	// Unreserve removes key's reservation: its payment definitively moved no value.
	Unreserve(ctx context.Context, key Key) error
}

// ErrNotFound reports a record that does not exist.
var ErrNotFound = errors.New("store: not found")
