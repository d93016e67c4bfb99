package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
)

// The buyer wallet's ledger: spend reserved against limits, approvals, delegations and the
// hash-chained journal. Package wallet defines the interface (wallet.Ledger) that *DB implements;
// the row types live here so that store never imports wallet.

// Errors of the wallet ledger; refusals wrap them so errors.Is works.
var (
	// ErrLimit reports a spend that would pass a limit; *LimitError carries which one.
	ErrLimit = errors.New("store: spend limit reached")
	// ErrDuplicate reports a payment for the same (method, URL, quote) inside the duplicate window.
	ErrDuplicate = errors.New("store: duplicate payment inside the window")
	// ErrDelegationRevoked reports a delegation (or one of its ancestors) that was revoked.
	ErrDelegationRevoked = errors.New("store: delegation revoked")
	// ErrDelegationExpired reports a delegation (or one of its ancestors) past its expiry.
	ErrDelegationExpired = errors.New("store: delegation expired")
	// ErrApprovalNotApproved reports an approval that is still pending.
	ErrApprovalNotApproved = errors.New("store: approval not approved yet")
	// ErrApprovalDenied reports an approval a human denied.
	ErrApprovalDenied = errors.New("store: approval denied")
	// ErrApprovalUsed reports an approval already consumed by a payment.
	ErrApprovalUsed = errors.New("store: approval already used")
	// ErrApprovalMismatch reports an approval for other terms (payee, amount, asset, host).
	ErrApprovalMismatch = errors.New("store: approval is for other payment terms")
	// ErrApprovalExpired reports an approval past its expiry.
	ErrApprovalExpired = errors.New("store: approval expired")
	// ErrNotPending reports a decision on an approval that was already decided.
	ErrNotPending = errors.New("store: approval already decided")
)

// LimitError names the limit a spend would pass.
type LimitError struct {
	Limit SpendLimit
	// Used is what the limit's rows held before this spend.
	Used evm.Amount
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("store: spend limit %s (%s) reached: %s used of %s", e.Limit.Rule, e.Limit.Scope, e.Used, e.Limit.Max)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Spend states.
const (
	SpendReserved = "reserved" // authorization may be signed; counts until it expires
	SpendSettled  = "settled"  // the seller reported it paid; counts for good
	SpendReleased = "released" // definitely not paid; counts no more
)

// Scope keys a spend counts against. A limit counts the live spend of its scope in its asset.
const ScopeWallet = "wallet"

// ScopePayee, ScopeHost and ScopeDelegation build the other scope keys.
func ScopePayee(a common.Address) string { return "payee:" + lowerHex(a) }

// ScopeHost keys spend to a (normalised) host.
func ScopeHost(host string) string { return "host:" + host }

// ScopeDelegation keys spend of a delegation, counted for it and every ancestor.
func ScopeDelegation(id string) string { return "delegation:" + id }

func lowerHex(a common.Address) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 2+2*len(a))
	b[0], b[1] = '0', 'x'
	for i, c := range a {
		b[2+2*i], b[3+2*i] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

// SpendLimit is one limit a reservation must stay within.
type SpendLimit struct {
	// Rule names the limit in refusals and the journal: "max_payment", "budgets.day", "per_payee",
	// "per_host", "delegation".
	Rule string
	// Scope is the scope key whose spend is counted; "" limits this payment alone.
	Scope string
	// Window is the rolling window counted; 0 counts all live spend ever (delegations).
	Window time.Duration
	// Max is the most the scope may hold, in the asset's atomic units.
	Max evm.Amount
}

// LimitUsage is a limit and what its scope holds after a reservation.
type LimitUsage struct {
	Limit SpendLimit
	Used  evm.Amount
}

// SpendRequest is one reservation: the payment's terms, every scope it counts against and every
// limit it must stay within.
type SpendRequest struct {
	ID      string // unique, chosen by the caller
	Wallet  string
	Network string
	Asset   common.Address
	Amount  evm.Amount
	Payee   common.Address
	Host    string
	// Scopes are the scope keys the spend counts against (ScopeWallet, ScopePayee, …).
	Scopes []string
	// Limits must all hold after the spend, or nothing is recorded.
	Limits []SpendLimit
	// Delegations must all be live: the spender's delegation and its ancestors.
	Delegations []string
	// DupKey, when not zero, refuses the spend if a live spend with the same key was reserved
	// within DupWindow.
	DupKey    [32]byte
	DupWindow time.Duration
	// ApprovalID, when set, is consumed by this spend: it must be approved, unused, unexpired
	// and for the same network, asset, amount, payee and host.
	ApprovalID string
	Now        time.Time
	// Expires is when the authorization stops being valid: a reserved spend counts until then.
	Expires time.Time
}

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalUsed     = "used"
)

// Approval is a payment waiting for (or given) a human's decision.
type Approval struct {
	ID, Wallet string
	State      string
	// Rule is why the payment needed approval: "approve_above" or "new_payee".
	Rule       string
	Network    string
	Asset      common.Address
	Amount     evm.Amount
	Payee      common.Address
	Host       string
	Method     string
	URL        string
	Purpose    string
	TaskID     string
	Delegation string
	Created    time.Time
	Expires    time.Time
	Decided    time.Time
	DecidedBy  string
	Reason     string
	// UsedBy is the spend that consumed the approval.
	UsedBy string
}

// Delegation is a child budget handed to a sub-agent.
type Delegation struct {
	ID, Wallet string
	Parent     string // "" for a delegation of the wallet itself
	// Limit is a decimal amount in each asset's own units, converted with the trusted registry.
	Limit   string
	Hosts   []string
	Payees  []string
	Routes  []string
	Created time.Time
	Expires time.Time
	Revoked time.Time // zero while live
}

// Journal kinds.
const (
	KindPaid      = "paid"
	KindRefused   = "refused"
	KindPending   = "pending"
	KindApproved  = "approved"
	KindDenied    = "denied"
	KindFailed    = "failed"
	KindUnknown   = "unknown" // paid or not is not known yet; the spend stays counted
	KindRefunded  = "refunded"
	KindAlert     = "alert"
	KindDelegated = "delegated"
	KindRevoked   = "revoked"
	KindDelivered = "delivered" // the response body's hash, for bodies hashed as they stream
)

// JournalEntry is one decision of a wallet. Entries are chained: Hash covers every field and the
// previous entry's hash, so an edit, deletion or reordering breaks the chain. Keys and signatures
// are never part of an entry.
type JournalEntry struct {
	Wallet string
	Seq    uint64
	Time   time.Time
	Kind   string
	// Rule names the rule that decided (the refusing limit, "approve_above", …).
	Rule   string
	Detail string

	Purpose           string
	TaskID            string
	UpstreamRequestID string
	Delegation        string
	Approval          string
	Spend             string
	Actor             string // who approved or denied

	Payee   common.Address
	Host    string
	Route   string // "GET https://host/path"
	Rail    string
	Network string
	Asset   common.Address
	Amount  evm.Amount
	Tx      string
	// ResponseHash is the SHA-256 of the response body delivered for the payment.
	ResponseHash string

	Prev [32]byte
	Hash [32]byte
}

// ComputeHash returns the hash the entry should carry given its fields and Prev.
func (e *JournalEntry) ComputeHash() [32]byte {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("quid-journal-v1")
	field(e.Wallet)
	binary.BigEndian.PutUint64(n[:], e.Seq)
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.Time.UnixNano()))
	h.Write(n[:])
	for _, s := range []string{e.Kind, e.Rule, e.Detail, e.Purpose, e.TaskID, e.UpstreamRequestID, e.Delegation,
		e.Approval, e.Spend, e.Actor, lowerHex(e.Payee), e.Host, e.Route, e.Rail, e.Network, lowerHex(e.Asset),
		e.Amount.String(), e.Tx, e.ResponseHash} {
		field(s)
	}
	h.Write(e.Prev[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// JournalQuery selects journal entries, oldest first.
type JournalQuery struct {
	AfterSeq uint64
	Kinds    []string
	// Last, when positive, keeps only the last n matching entries.
	Last int
}

// AssetRef names an asset on a network.
type AssetRef struct {
	Network string
	Asset   common.Address
}

// Admits checks that the approval lets r spend: approved, unused, unexpired at r.Now and for
// r's network, asset, amount, payee and host.
func (a *Approval) Admits(r *SpendRequest) error {
	switch a.State {
	case ApprovalPending:
		return fmt.Errorf("%w: %s", ErrApprovalNotApproved, a.ID)
	case ApprovalDenied:
		return fmt.Errorf("%w: %s by %s", ErrApprovalDenied, a.ID, a.DecidedBy)
	case ApprovalUsed:
		return fmt.Errorf("%w: %s", ErrApprovalUsed, a.ID)
	case ApprovalApproved:
	default:
		return fmt.Errorf("store: approval %s in unknown state %q", a.ID, a.State)
	}
	if !r.Now.Before(a.Expires) {
		return fmt.Errorf("%w: %s", ErrApprovalExpired, a.ID)
	}
	if a.Network != r.Network || a.Asset != r.Asset || a.Amount.Cmp(r.Amount) != 0 || a.Payee != r.Payee || a.Host != r.Host {
		return fmt.Errorf("%w: %s", ErrApprovalMismatch, a.ID)
	}
	return nil
}

// Live checks that the delegation is neither revoked nor expired at now.
func (d *Delegation) Live(now time.Time) error {
	if !d.Revoked.IsZero() {
		return fmt.Errorf("%w: %s", ErrDelegationRevoked, d.ID)
	}
	if !now.Before(d.Expires) {
		return fmt.Errorf("%w: %s", ErrDelegationExpired, d.ID)
	}
	return nil
}

// SpendCounts reports whether a spend in state, reserved at created and valid until expires,
// counts toward a limit with window at now: settled spends count, reserved ones until their
// authorization expires (it might still be settled until then), released ones never; and only
// when reserved within the window (0: ever).
func SpendCounts(state string, created, expires time.Time, window time.Duration, now time.Time) bool {
	if window > 0 && !created.After(now.Add(-window)) {
		return false
	}
	return state == SpendSettled || (state == SpendReserved && expires.After(now))
}
