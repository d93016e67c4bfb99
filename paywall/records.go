package paywall

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

// Records is the seller's memory of its payers, for pricing known buyers, blocking payers and
// the admin's view (payers, revenue per route, refusals). *store.DB implements it.
type Records interface {
	// Known reports whether payer has paid this seller before.
	Known(ctx context.Context, payer common.Address) (bool, error)
	// Blocked reports whether the seller's admin blocked payer.
	Blocked(ctx context.Context, payer common.Address) (bool, error)
	// RecordPayment records a settled payment; recording one payment twice counts it once.
	RecordPayment(ctx context.Context, p store.SellerPayment) error
	// RecordRequests counts n requests of payer served on capability tokens, the last at last.
	// The paywall tallies them in memory and records them about once a second (see tally).
	RecordRequests(ctx context.Context, payer common.Address, n uint64, last time.Time) error
	// RecordRefusal records a request refused by access policy or for an invalid credential.
	RecordRefusal(ctx context.Context, r store.Refusal) error
}

// SpendLedger counts what each payer paid per window, for Policy.Spend. *store.DB implements
// it; the count is shared by every instance using the same store.
type SpendLedger interface {
	// AddSpend adds amount to payer's spend in the window starting at window if the total stays
	// within max, and reports whether it did, atomically.
	AddSpend(ctx context.Context, payer common.Address, window time.Time, amount, max evm.Amount) (bool, error)
	// RefundSpend takes back an amount added for a payment that was not settled.
	RefundSpend(ctx context.Context, payer common.Address, window time.Time, amount evm.Amount) error
}

// CapabilityUses counts the uses of capability tokens. *store.DB implements it.
type CapabilityUses interface {
	// UseCapability takes one use of token id if fewer than max were taken (max 0: no limit)
	// and reports whether it did. Of concurrent calls for a token's last use, exactly one
	// succeeds, across every instance sharing the store. The count is kept until expires.
	UseCapability(ctx context.Context, id [16]byte, max uint64, expires time.Time) (bool, error)
}

var (
	_ Records        = (*store.DB)(nil)
	_ SpendLedger    = (*store.DB)(nil)
	_ CapabilityUses = (*store.DB)(nil)
)
