package wallet

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

// Ledger is everything a wallet must do atomically across processes: reserve spend against
// every limit in one step, settle or release it, approvals, delegations and the journal. Each
// method that changes state and takes a journal entry appends the entry in the same
// transaction, so a decision and its record exist together or not at all, and the journal's
// chain never forks, whatever number of processes append to it.
//
// *store.DB implements it durably (SQLite, PostgreSQL); MemoryLedger within one process.
type Ledger interface {
	// ReserveSpend records r if, in one atomic step, every limit in r.Limits still holds with r
	// counted, no live spend with r.DupKey was reserved within r.DupWindow, every delegation in
	// r.Delegations is live, and r.ApprovalID (if set) is approved for these terms and unused
	// (it is consumed). Otherwise it records nothing and returns the refusal: *store.LimitError
	// (store.ErrLimit), store.ErrDuplicate, store.ErrDelegationRevoked/Expired, store.ErrApproval….
	// It returns what each limit holds after the spend.
	ReserveSpend(ctx context.Context, r store.SpendRequest) ([]store.LimitUsage, error)
	// SettleSpend marks a reserved spend paid (with its transaction, if known) and appends e,
	// atomically. Settling a settled spend is a no-op that still reports success.
	SettleSpend(ctx context.Context, wallet, id, tx string, e store.JournalEntry) (store.JournalEntry, error)
	// ReleaseSpend marks a reserved spend as definitely not paid, so it counts no more, gives its
	// approval back (approved, unused) and appends e, atomically.
	ReleaseSpend(ctx context.Context, wallet, id string, e store.JournalEntry) (store.JournalEntry, error)
	// SpentIn returns what scope l.Scope holds in an asset under l's window at now.
	SpentIn(ctx context.Context, wallet, network string, asset common.Address, l store.SpendLimit, now time.Time) (evm.Amount, error)
	// SpentAssets lists the (network, asset) pairs the wallet reserved since a moment.
	SpentAssets(ctx context.Context, wallet string, since time.Time) ([]store.AssetRef, error)
	// KnownPayee reports whether the wallet ever settled a payment to payee.
	KnownPayee(ctx context.Context, wallet string, payee common.Address) (bool, error)

	// CreateApproval records a pending approval and appends e, atomically.
	CreateApproval(ctx context.Context, a store.Approval, e store.JournalEntry) error
	// DecideApproval approves or denies a pending approval (store.ErrNotPending if it is not
	// pending, store.ErrNotFound if unknown) and appends e, atomically.
	DecideApproval(ctx context.Context, wallet, id string, approve bool, who, reason string, at time.Time, e store.JournalEntry) error
	// GetApproval returns an approval, or store.ErrNotFound.
	GetApproval(ctx context.Context, wallet, id string) (store.Approval, error)
	// ListApprovals lists a wallet's approvals in a state ("" for all), oldest first.
	ListApprovals(ctx context.Context, wallet, state string) ([]store.Approval, error)

	// CreateDelegation records a delegation and appends e, atomically.
	CreateDelegation(ctx context.Context, d store.Delegation, e store.JournalEntry) error
	// RevokeDelegation revokes a delegation at a moment (its descendants stop with it, since
	// their spends require every ancestor live) and appends e, atomically.
	RevokeDelegation(ctx context.Context, wallet, id string, at time.Time, e store.JournalEntry) error
	// GetDelegation returns a delegation, or store.ErrNotFound.
	GetDelegation(ctx context.Context, wallet, id string) (store.Delegation, error)

	// AppendJournal chains e after the wallet's last entry (setting Seq, Prev and Hash) and
	// returns it as stored.
	AppendJournal(ctx context.Context, e store.JournalEntry) (store.JournalEntry, error)
	// ReadJournal returns a wallet's entries in sequence order.
	ReadJournal(ctx context.Context, wallet string, q store.JournalQuery) ([]store.JournalEntry, error)
}

// Row types of the ledger, named here for callers of this package.
type (
	JournalEntry = store.JournalEntry
	Approval     = store.Approval
	Delegation   = store.Delegation
)
