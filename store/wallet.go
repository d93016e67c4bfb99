package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
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
	// DupKey, when not zero, is recorded with the spend; and when DupWindow is positive, the
	// spend is refused if a live spend with the same key was reserved within DupWindow.
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

// walletTx runs f in one transaction serialised with every other ledger transaction of the
// wallet: on SQLite by the database's single writer (BEGIN IMMEDIATE), on PostgreSQL by an
// advisory lock on the wallet, so two processes never both pass a limit check or fork the
// journal's chain.
func (d *DB) walletTx(ctx context.Context, wallet string, f func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: wallet: %w", err)
	}
	defer tx.Rollback()
	if d.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 7199004))`, "quid-wallet:"+wallet); err != nil {
			return fmt.Errorf("store: wallet lock: %w", err)
		}
	}
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: wallet: %w", err)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// ReserveSpend implements wallet.Ledger: every check and the insert run in one walletTx.
func (d *DB) ReserveSpend(ctx context.Context, r SpendRequest) ([]LimitUsage, error) {
	var usage []LimitUsage
	err := d.walletTx(ctx, r.Wallet, func(tx *sql.Tx) error {
		for _, id := range r.Delegations {
			dl, err := d.getDelegation(ctx, tx, r.Wallet, id)
			if err != nil {
				return err
			}
			if err := dl.Live(r.Now); err != nil {
				return err
			}
		}
		if r.DupKey != ([32]byte{}) && r.DupWindow > 0 {
			rows, err := tx.QueryContext(ctx, d.q(`SELECT state, created_at, expires_at FROM wallet_spends WHERE wallet = ? AND dup_key = ?`), r.Wallet, r.DupKey[:])
			if err != nil {
				return fmt.Errorf("store: reserve spend: %w", err)
			}
			dup := false
			for rows.Next() {
				var state string
				var created, expires int64
				if err := rows.Scan(&state, &created, &expires); err != nil {
					rows.Close()
					return fmt.Errorf("store: reserve spend: %w", err)
				}
				dup = dup || SpendCounts(state, time.UnixMilli(created), time.UnixMilli(expires), r.DupWindow, r.Now)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("store: reserve spend: %w", err)
			}
			if dup {
				return ErrDuplicate
			}
		}
		if r.ApprovalID != "" {
			a, err := d.getApproval(ctx, tx, r.Wallet, r.ApprovalID)
			if err != nil {
				return err
			}
			if err := a.Admits(&r); err != nil {
				return err
			}
		}
		usage = make([]LimitUsage, 0, len(r.Limits))
		for _, l := range r.Limits {
			var used evm.Amount
			if l.Scope != "" {
				var err error
				if used, err = d.spent(ctx, tx, r.Wallet, r.Network, r.Asset, l, r.Now); err != nil {
					return err
				}
			}
			after, ok := used.Add(r.Amount)
			if !ok || after.Cmp(l.Max) > 0 {
				return &LimitError{Limit: l, Used: used}
			}
			usage = append(usage, LimitUsage{Limit: l, Used: after})
		}
		var dupKey []byte
		if r.DupKey != ([32]byte{}) {
			dupKey = r.DupKey[:]
		}
		scopes := r.Scopes
		if len(scopes) == 0 {
			scopes = []string{""} // the spend still needs a row to settle or release
		}
		for _, scope := range scopes {
			if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO wallet_spends (wallet, id, scope, network, asset, amount, payee, host, state, dup_key, approval, created_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), r.Wallet, r.ID, scope, r.Network, lowerHex(r.Asset), r.Amount.String(),
				lowerHex(r.Payee), r.Host, SpendReserved, dupKey, r.ApprovalID, ms(r.Now), ms(r.Expires)); err != nil {
				return fmt.Errorf("store: reserve spend: %w", err)
			}
		}
		if r.ApprovalID != "" {
			if _, err := tx.ExecContext(ctx, d.q(`UPDATE wallet_approvals SET state = ?, used_by = ? WHERE wallet = ? AND id = ?`),
				ApprovalUsed, r.ID, r.Wallet, r.ApprovalID); err != nil {
				return fmt.Errorf("store: reserve spend: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return usage, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// spent sums, exactly, the live spend of a scope in an asset within a limit's window.
func (d *DB) spent(ctx context.Context, q querier, wallet, network string, asset common.Address, l SpendLimit, now time.Time) (evm.Amount, error) {
	since := int64(math.MinInt64)
	if l.Window > 0 {
		since = ms(now.Add(-l.Window))
	}
	rows, err := q.QueryContext(ctx, d.q(`SELECT amount, state, created_at, expires_at FROM wallet_spends
		WHERE wallet = ? AND scope = ? AND network = ? AND asset = ? AND created_at > ? AND state <> ?`),
		wallet, l.Scope, network, lowerHex(asset), since, SpendReleased)
	if err != nil {
		return evm.Amount{}, fmt.Errorf("store: spent: %w", err)
	}
	defer rows.Close()
	var sum evm.Amount
	for rows.Next() {
		var amount, state string
		var created, expires int64
		if err := rows.Scan(&amount, &state, &created, &expires); err != nil {
			return evm.Amount{}, fmt.Errorf("store: spent: %w", err)
		}
		if !SpendCounts(state, time.UnixMilli(created), time.UnixMilli(expires), l.Window, now) {
			continue
		}
		a, err := evm.ParseAmount(amount)
		if err != nil {
			return evm.Amount{}, fmt.Errorf("store: corrupt amount %q", amount)
		}
		var ok bool
		if sum, ok = sum.Add(a); !ok {
			return evm.Amount{}, errors.New("store: spend overflows uint256")
		}
	}
	return sum, rows.Err()
}

// SpentIn implements wallet.Ledger.
func (d *DB) SpentIn(ctx context.Context, wallet, network string, asset common.Address, l SpendLimit, now time.Time) (evm.Amount, error) {
	return d.spent(ctx, d.db, wallet, network, asset, l, now)
}

// SettleSpend implements wallet.Ledger.
func (d *DB) SettleSpend(ctx context.Context, wallet, id, txHash string, e JournalEntry) (JournalEntry, error) {
	err := d.walletTx(ctx, wallet, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, d.q(`UPDATE wallet_spends SET state = ?, tx = ? WHERE wallet = ? AND id = ?`), SpendSettled, txHash, wallet, id)
		if err != nil {
			return fmt.Errorf("store: settle spend: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: spend %s", ErrNotFound, id)
		}
		e, err = d.appendJournal(ctx, tx, e)
		return err
	})
	return e, err
}

// ReleaseSpend implements wallet.Ledger.
func (d *DB) ReleaseSpend(ctx context.Context, wallet, id string, e JournalEntry) (JournalEntry, error) {
	err := d.walletTx(ctx, wallet, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM wallet_spends WHERE wallet = ? AND id = ?`), wallet, id).Scan(&n); err != nil {
			return fmt.Errorf("store: release spend: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: spend %s", ErrNotFound, id)
		}
		res, err := tx.ExecContext(ctx, d.q(`UPDATE wallet_spends SET state = ? WHERE wallet = ? AND id = ? AND state = ?`), SpendReleased, wallet, id, SpendReserved)
		if err != nil {
			return fmt.Errorf("store: release spend: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := tx.ExecContext(ctx, d.q(`UPDATE wallet_approvals SET state = ?, used_by = '' WHERE wallet = ? AND used_by = ? AND state = ?`),
				ApprovalApproved, wallet, id, ApprovalUsed); err != nil {
				return fmt.Errorf("store: release spend: %w", err)
			}
		}
		e, err = d.appendJournal(ctx, tx, e)
		return err
	})
	return e, err
}

// SpentAssets implements wallet.Ledger.
func (d *DB) SpentAssets(ctx context.Context, wallet string, since time.Time) ([]AssetRef, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT DISTINCT network, asset FROM wallet_spends WHERE wallet = ? AND created_at > ? ORDER BY network, asset`), wallet, ms(since))
	if err != nil {
		return nil, fmt.Errorf("store: spent assets: %w", err)
	}
	defer rows.Close()
	var out []AssetRef
	for rows.Next() {
		var r AssetRef
		var asset string
		if err := rows.Scan(&r.Network, &asset); err != nil {
			return nil, fmt.Errorf("store: spent assets: %w", err)
		}
		r.Asset = common.HexToAddress(asset)
		out = append(out, r)
	}
	return out, rows.Err()
}

// KnownPayee implements wallet.Ledger.
func (d *DB) KnownPayee(ctx context.Context, wallet string, payee common.Address) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM wallet_spends WHERE wallet = ? AND payee = ? AND state = ?`),
		wallet, lowerHex(payee), SpendSettled).Scan(&n)
	return n > 0, err
}

const approvalColumns = `wallet, id, state, rule, network, asset, amount, payee, host, method, url, purpose, task_id, delegation, created_at, expires_at, decided_at, decided_by, reason, used_by`

func scanApproval(row interface{ Scan(...any) error }) (Approval, error) {
	var a Approval
	var asset, amount, payee string
	var created, expires, decided int64
	if err := row.Scan(&a.Wallet, &a.ID, &a.State, &a.Rule, &a.Network, &asset, &amount, &payee, &a.Host, &a.Method, &a.URL,
		&a.Purpose, &a.TaskID, &a.Delegation, &created, &expires, &decided, &a.DecidedBy, &a.Reason, &a.UsedBy); err != nil {
		return a, err
	}
	v, err := evm.ParseAmount(amount)
	if err != nil {
		return a, fmt.Errorf("store: corrupt amount %q", amount)
	}
	a.Amount, a.Asset, a.Payee = v, common.HexToAddress(asset), common.HexToAddress(payee)
	a.Created, a.Expires = time.UnixMilli(created), time.UnixMilli(expires)
	if decided != 0 {
		a.Decided = time.UnixMilli(decided)
	}
	return a, nil
}

func (d *DB) getApproval(ctx context.Context, q querier, wallet, id string) (Approval, error) {
	a, err := scanApproval(q.QueryRowContext(ctx, d.q(`SELECT `+approvalColumns+` FROM wallet_approvals WHERE wallet = ? AND id = ?`), wallet, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: approval %s", ErrNotFound, id)
	}
	return a, err
}

// CreateApproval implements wallet.Ledger.
func (d *DB) CreateApproval(ctx context.Context, a Approval, e JournalEntry) error {
	return d.walletTx(ctx, a.Wallet, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO wallet_approvals (`+approvalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			a.Wallet, a.ID, a.State, a.Rule, a.Network, lowerHex(a.Asset), a.Amount.String(), lowerHex(a.Payee), a.Host, a.Method, a.URL,
			a.Purpose, a.TaskID, a.Delegation, ms(a.Created), ms(a.Expires), 0, "", "", ""); err != nil {
			return fmt.Errorf("store: create approval: %w", err)
		}
		_, err := d.appendJournal(ctx, tx, e)
		return err
	})
}

// DecideApproval implements wallet.Ledger.
func (d *DB) DecideApproval(ctx context.Context, wallet, id string, approve bool, who, reason string, at time.Time, e JournalEntry) error {
	state := ApprovalDenied
	if approve {
		state = ApprovalApproved
	}
	return d.walletTx(ctx, wallet, func(tx *sql.Tx) error {
		if _, err := d.getApproval(ctx, tx, wallet, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, d.q(`UPDATE wallet_approvals SET state = ?, decided_at = ?, decided_by = ?, reason = ? WHERE wallet = ? AND id = ? AND state = ?`),
			state, ms(at), who, reason, wallet, id, ApprovalPending)
		if err != nil {
			return fmt.Errorf("store: decide approval: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotPending
		}
		_, err = d.appendJournal(ctx, tx, e)
		return err
	})
}

// GetApproval implements wallet.Ledger.
func (d *DB) GetApproval(ctx context.Context, wallet, id string) (Approval, error) {
	return d.getApproval(ctx, d.db, wallet, id)
}

// ListApprovals implements wallet.Ledger.
func (d *DB) ListApprovals(ctx context.Context, wallet, state string) ([]Approval, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT `+approvalColumns+` FROM wallet_approvals WHERE wallet = ? AND (? = '' OR state = ?) ORDER BY created_at, id`), wallet, state, state)
	if err != nil {
		return nil, fmt.Errorf("store: list approvals: %w", err)
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list approvals: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func (d *DB) getDelegation(ctx context.Context, q querier, wallet, id string) (Delegation, error) {
	var dl Delegation
	var hosts, payees, routes string
	var created, expires, revoked int64
	err := q.QueryRowContext(ctx, d.q(`SELECT wallet, id, parent, spend_limit, hosts, payees, routes, created_at, expires_at, revoked_at
		FROM wallet_delegations WHERE wallet = ? AND id = ?`), wallet, id).Scan(&dl.Wallet, &dl.ID, &dl.Parent, &dl.Limit,
		&hosts, &payees, &routes, &created, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return dl, fmt.Errorf("%w: delegation %s", ErrNotFound, id)
	}
	if err != nil {
		return dl, fmt.Errorf("store: delegation: %w", err)
	}
	for _, f := range []struct {
		s   string
		out *[]string
	}{{hosts, &dl.Hosts}, {payees, &dl.Payees}, {routes, &dl.Routes}} {
		if err := json.Unmarshal([]byte(f.s), f.out); err != nil {
			return dl, fmt.Errorf("store: corrupt delegation %s", id)
		}
	}
	dl.Created, dl.Expires = time.UnixMilli(created), time.UnixMilli(expires)
	if revoked != 0 {
		dl.Revoked = time.UnixMilli(revoked)
	}
	return dl, nil
}

// CreateDelegation implements wallet.Ledger.
func (d *DB) CreateDelegation(ctx context.Context, dl Delegation, e JournalEntry) error {
	return d.walletTx(ctx, dl.Wallet, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO wallet_delegations (wallet, id, parent, spend_limit, hosts, payees, routes, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), dl.Wallet, dl.ID, dl.Parent, dl.Limit, encodeList(dl.Hosts), encodeList(dl.Payees),
			encodeList(dl.Routes), ms(dl.Created), ms(dl.Expires)); err != nil {
			return fmt.Errorf("store: create delegation: %w", err)
		}
		_, err := d.appendJournal(ctx, tx, e)
		return err
	})
}

// RevokeDelegation implements wallet.Ledger.
func (d *DB) RevokeDelegation(ctx context.Context, wallet, id string, at time.Time, e JournalEntry) error {
	return d.walletTx(ctx, wallet, func(tx *sql.Tx) error {
		if _, err := d.getDelegation(ctx, tx, wallet, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.q(`UPDATE wallet_delegations SET revoked_at = ? WHERE wallet = ? AND id = ? AND revoked_at = 0`),
			ms(at), wallet, id); err != nil {
			return fmt.Errorf("store: revoke delegation: %w", err)
		}
		_, err := d.appendJournal(ctx, tx, e)
		return err
	})
}

// GetDelegation implements wallet.Ledger.
func (d *DB) GetDelegation(ctx context.Context, wallet, id string) (Delegation, error) {
	return d.getDelegation(ctx, d.db, wallet, id)
}

const journalColumns = `wallet, seq, at, kind, rule, detail, purpose, task_id, upstream_request_id, delegation, approval, spend, actor,
	payee, host, route, rail, network, asset, amount, tx, response_hash, prev, hash`

// appendJournal chains e after the wallet's last entry inside tx; walletTx holds the wallet's
// lock, and the (wallet, seq) key refuses a second entry at one position in any case.
func (d *DB) appendJournal(ctx context.Context, tx *sql.Tx, e JournalEntry) (JournalEntry, error) {
	var last int64
	var prev []byte
	err := tx.QueryRowContext(ctx, d.q(`SELECT seq, hash FROM wallet_journal WHERE wallet = ? ORDER BY seq DESC LIMIT 1`), e.Wallet).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("store: journal: %w", err)
	}
	e.Seq, e.Prev = uint64(last)+1, [32]byte{}
	copy(e.Prev[:], prev)
	e.Hash = e.ComputeHash()
	amount := ""
	if !e.Amount.IsZero() {
		amount = e.Amount.String()
	}
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO wallet_journal (`+journalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Wallet, int64(e.Seq), e.Time.UnixNano(), e.Kind, e.Rule, e.Detail, e.Purpose, e.TaskID, e.UpstreamRequestID, e.Delegation,
		e.Approval, e.Spend, e.Actor, lowerHex(e.Payee), e.Host, e.Route, e.Rail, e.Network, lowerHex(e.Asset), amount, e.Tx,
		e.ResponseHash, e.Prev[:], e.Hash[:]); err != nil {
		return e, fmt.Errorf("store: journal: %w", err)
	}
	return e, nil
}

// AppendJournal implements wallet.Ledger.
func (d *DB) AppendJournal(ctx context.Context, e JournalEntry) (JournalEntry, error) {
	err := d.walletTx(ctx, e.Wallet, func(tx *sql.Tx) error {
		var err error
		e, err = d.appendJournal(ctx, tx, e)
		return err
	})
	return e, err
}

// ReadJournal implements wallet.Ledger.
func (d *DB) ReadJournal(ctx context.Context, wallet string, q JournalQuery) ([]JournalEntry, error) {
	query := `SELECT ` + journalColumns + ` FROM wallet_journal WHERE wallet = ? AND seq > ?`
	args := []any{wallet, int64(q.AfterSeq)}
	if len(q.Kinds) > 0 {
		query += ` AND kind IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(q.Kinds)), ", ") + `)`
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	if q.Last > 0 {
		query = `SELECT * FROM (` + query + fmt.Sprintf(` ORDER BY seq DESC LIMIT %d) last`, q.Last)
	}
	query += ` ORDER BY seq`
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: read journal: %w", err)
	}
	defer rows.Close()
	var out []JournalEntry
	for rows.Next() {
		var e JournalEntry
		var seq, at int64
		var payee, asset, amount string
		var prev, hash []byte
		if err := rows.Scan(&e.Wallet, &seq, &at, &e.Kind, &e.Rule, &e.Detail, &e.Purpose, &e.TaskID, &e.UpstreamRequestID,
			&e.Delegation, &e.Approval, &e.Spend, &e.Actor, &payee, &e.Host, &e.Route, &e.Rail, &e.Network, &asset, &amount,
			&e.Tx, &e.ResponseHash, &prev, &hash); err != nil {
			return nil, fmt.Errorf("store: read journal: %w", err)
		}
		e.Seq, e.Time = uint64(seq), time.Unix(0, at)
		e.Payee, e.Asset = common.HexToAddress(payee), common.HexToAddress(asset)
		if amount != "" {
			// A corrupt amount is kept as zero: verification then reports the entry as edited.
			e.Amount, _ = evm.ParseAmount(amount)
		}
		copy(e.Prev[:], prev)
		copy(e.Hash[:], hash)
		out = append(out, e)
	}
	return out, rows.Err()
}
