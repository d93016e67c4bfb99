package wallet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

// MemoryLedger is a Ledger held in process memory: atomic across the goroutines of one
// process, and lost when the process ends. It is the default of a wallet without a Ledger;
// wallets of several processes, or whose budgets must survive a restart, use a *store.DB.
// Spends older than the longest window are forgotten (unless a delegation may still count
// them), and so are the oldest journal entries beyond JournalLimit: a wallet whose journal must
// be kept whole uses a store.
type MemoryLedger struct {
	// JournalLimit bounds the journal entries kept per wallet; past it the oldest quarter is
	// dropped, and VerifyJournal checks the chain from the first entry kept. Set it before use.
	// Default: DefaultMemoryJournalLimit.
	JournalLimit int

	mu          sync.Mutex
	sweep       int
	spends      []*memSpend
	byID        map[string]*memSpend
	approvals   map[string]*store.Approval
	delegations map[string]*store.Delegation
	journal     map[string][]store.JournalEntry
	dropped     map[string]JournalHead // per wallet, the last journal entry dropped
	payees      map[string]bool        // wallet and payee of every settled spend, kept after pruning
}

type memSpend struct {
	r     store.SpendRequest
	state string
	tx    string
}

var _ Ledger = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty MemoryLedger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{byID: map[string]*memSpend{}, approvals: map[string]*store.Approval{},
		delegations: map[string]*store.Delegation{}, journal: map[string][]store.JournalEntry{},
		dropped: map[string]JournalHead{}, payees: map[string]bool{}}
}

func memKey(wallet, id string) string { return wallet + "\x00" + id }

func (m *MemoryLedger) spent(wallet, network string, asset common.Address, l store.SpendLimit, now time.Time) (evm.Amount, error) {
	var sum evm.Amount
	for _, s := range m.spends {
		if s.r.Wallet != wallet || s.r.Network != network || s.r.Asset != asset || !slices.Contains(s.r.Scopes, l.Scope) ||
			!store.SpendCounts(s.state, s.r.Now, s.r.Expires, l.Window, now) {
			continue
		}
		var ok bool
		if sum, ok = sum.Add(s.r.Amount); !ok {
			return sum, fmt.Errorf("wallet: spend overflows uint256")
		}
	}
	return sum, nil
}

// ReserveSpend implements Ledger.
func (m *MemoryLedger) ReserveSpend(_ context.Context, r store.SpendRequest) ([]store.LimitUsage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[memKey(r.Wallet, r.ID)]; ok {
		return nil, fmt.Errorf("wallet: spend %s exists", r.ID)
	}
	for _, id := range r.Delegations {
		d, ok := m.delegations[memKey(r.Wallet, id)]
		if !ok {
			return nil, fmt.Errorf("%w: delegation %s", store.ErrNotFound, id)
		}
		if err := d.Live(r.Now); err != nil {
			return nil, err
		}
	}
	if r.DupKey != ([32]byte{}) && r.DupWindow > 0 {
		for _, s := range m.spends {
			if s.r.Wallet == r.Wallet && s.r.DupKey == r.DupKey && store.SpendCounts(s.state, s.r.Now, s.r.Expires, r.DupWindow, r.Now) {
				return nil, store.ErrDuplicate
			}
		}
	}
	var approval *store.Approval
	if r.ApprovalID != "" {
		a, ok := m.approvals[memKey(r.Wallet, r.ApprovalID)]
		if !ok {
			return nil, fmt.Errorf("%w: approval %s", store.ErrNotFound, r.ApprovalID)
		}
		if err := a.Admits(&r); err != nil {
			return nil, err
		}
		approval = a
	}
	usage := make([]store.LimitUsage, 0, len(r.Limits))
	for _, l := range r.Limits {
		var used evm.Amount
		if l.Scope != "" {
			var err error
			if used, err = m.spent(r.Wallet, r.Network, r.Asset, l, r.Now); err != nil {
				return nil, err
			}
		}
		after, ok := used.Add(r.Amount)
		if !ok || after.Cmp(l.Max) > 0 {
			return nil, &store.LimitError{Limit: l, Used: used}
		}
		usage = append(usage, store.LimitUsage{Limit: l, Used: after})
	}
	if m.sweep++; m.sweep >= 256 {
		m.sweep = 0
		m.prune(r.Now)
	}
	s := &memSpend{r: r, state: store.SpendReserved}
	s.r.Scopes = slices.Clone(r.Scopes)
	m.spends = append(m.spends, s)
	m.byID[memKey(r.Wallet, r.ID)] = s
	if approval != nil {
		approval.State, approval.UsedBy = store.ApprovalUsed, r.ID
	}
	return usage, nil
}

// forgetAfter is how long a spend is kept: longer than any rolling window.
const forgetAfter = 8 * 24 * time.Hour

// prune forgets spends no limit can count any more: past every window, not reserved and
// live, and under no delegation (whose budget counts for the delegation's whole life).
func (m *MemoryLedger) prune(now time.Time) {
	kept := m.spends[:0]
	for _, s := range m.spends {
		old := s.r.Now.Before(now.Add(-forgetAfter)) && len(s.r.Delegations) == 0 &&
			!(s.state == store.SpendReserved && s.r.Expires.After(now))
		if old {
			delete(m.byID, memKey(s.r.Wallet, s.r.ID))
			continue
		}
		kept = append(kept, s)
	}
	clear(m.spends[len(kept):])
	m.spends = kept
}

// SettleSpend implements Ledger.
func (m *MemoryLedger) SettleSpend(_ context.Context, wallet, id, tx string, e store.JournalEntry) (store.JournalEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[memKey(wallet, id)]
	if !ok {
		return e, fmt.Errorf("%w: spend %s", store.ErrNotFound, id)
	}
	s.state, s.tx = store.SpendSettled, tx
	m.payees[memKey(wallet, s.r.Payee.Hex())] = true
	return m.append(e), nil
}

// ReleaseSpend implements Ledger.
func (m *MemoryLedger) ReleaseSpend(_ context.Context, wallet, id string, e store.JournalEntry) (store.JournalEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[memKey(wallet, id)]
	if !ok {
		return e, fmt.Errorf("%w: spend %s", store.ErrNotFound, id)
	}
	if s.state == store.SpendReserved {
		s.state = store.SpendReleased
		if a, ok := m.approvals[memKey(wallet, s.r.ApprovalID)]; ok && a.UsedBy == id {
			a.State, a.UsedBy = store.ApprovalApproved, ""
		}
	}
	return m.append(e), nil
}

// SpentIn implements Ledger.
func (m *MemoryLedger) SpentIn(_ context.Context, wallet, network string, asset common.Address, l store.SpendLimit, now time.Time) (evm.Amount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spent(wallet, network, asset, l, now)
}

// SpentAssets implements Ledger.
func (m *MemoryLedger) SpentAssets(_ context.Context, wallet string, since time.Time) ([]store.AssetRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.AssetRef
	for _, s := range m.spends {
		ref := store.AssetRef{Network: s.r.Network, Asset: s.r.Asset}
		if s.r.Wallet == wallet && s.r.Now.After(since) && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out, nil
}

// KnownPayee implements Ledger.
func (m *MemoryLedger) KnownPayee(_ context.Context, wallet string, payee common.Address) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.payees[memKey(wallet, payee.Hex())], nil
}

// CreateApproval implements Ledger.
func (m *MemoryLedger) CreateApproval(_ context.Context, a store.Approval, e store.JournalEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(a.Wallet, a.ID)
	if _, ok := m.approvals[k]; ok {
		return fmt.Errorf("wallet: approval %s exists", a.ID)
	}
	m.approvals[k] = &a
	m.append(e)
	return nil
}

// DecideApproval implements Ledger.
func (m *MemoryLedger) DecideApproval(_ context.Context, wallet, id string, approve bool, who, reason string, at time.Time, e store.JournalEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[memKey(wallet, id)]
	if !ok {
		return store.ErrNotFound
	}
	if a.State != store.ApprovalPending {
		return store.ErrNotPending
	}
	a.State = store.ApprovalDenied
	if approve {
		a.State = store.ApprovalApproved
	}
	a.Decided, a.DecidedBy, a.Reason = at, who, reason
	m.append(e)
	return nil
}

// GetApproval implements Ledger.
func (m *MemoryLedger) GetApproval(_ context.Context, wallet, id string) (store.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[memKey(wallet, id)]
	if !ok {
		return store.Approval{}, store.ErrNotFound
	}
	return *a, nil
}

// ListApprovals implements Ledger.
func (m *MemoryLedger) ListApprovals(_ context.Context, wallet, state string) ([]store.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Approval
	for _, a := range m.approvals {
		if a.Wallet == wallet && (state == "" || a.State == state) {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b store.Approval) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// CreateDelegation implements Ledger.
func (m *MemoryLedger) CreateDelegation(_ context.Context, d store.Delegation, e store.JournalEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(d.Wallet, d.ID)
	if _, ok := m.delegations[k]; ok {
		return fmt.Errorf("wallet: delegation %s exists", d.ID)
	}
	m.delegations[k] = &d
	m.append(e)
	return nil
}

// RevokeDelegation implements Ledger.
func (m *MemoryLedger) RevokeDelegation(_ context.Context, wallet, id string, at time.Time, e store.JournalEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.delegations[memKey(wallet, id)]
	if !ok {
		return store.ErrNotFound
	}
	if d.Revoked.IsZero() {
		d.Revoked = at
	}
	m.append(e)
	return nil
}

// GetDelegation implements Ledger.
func (m *MemoryLedger) GetDelegation(_ context.Context, wallet, id string) (store.Delegation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.delegations[memKey(wallet, id)]
	if !ok {
		return store.Delegation{}, store.ErrNotFound
	}
	return *d, nil
}

// AppendJournal implements Ledger.
func (m *MemoryLedger) AppendJournal(_ context.Context, e store.JournalEntry) (store.JournalEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.append(e), nil
}

func (m *MemoryLedger) append(e store.JournalEntry) store.JournalEntry {
	j := m.journal[e.Wallet]
	last := m.dropped[e.Wallet]
	if len(j) > 0 {
		last = JournalHead{Seq: j[len(j)-1].Seq, Hash: j[len(j)-1].Hash}
	}
	e.Seq, e.Prev = last.Seq+1, last.Hash
	e.Hash = e.ComputeHash()
	j = append(j, e)
	limit := m.JournalLimit
	if limit <= 0 {
		limit = DefaultMemoryJournalLimit
	}
	if len(j) > limit {
		drop := len(j) - limit + limit/4
		m.dropped[e.Wallet] = JournalHead{Seq: j[drop-1].Seq, Hash: j[drop-1].Hash}
		j = slices.Clone(j[drop:])
	}
	m.journal[e.Wallet] = j
	return e
}

// DefaultMemoryJournalLimit is MemoryLedger.JournalLimit's default.
const DefaultMemoryJournalLimit = 10_000

// readJournalWindow returns the wallet's retained journal and the head of the entry just before
// it (zero when nothing was dropped), read together.
func (m *MemoryLedger) readJournalWindow(wallet string) (JournalHead, []store.JournalEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped[wallet], slices.Clone(m.journal[wallet])
}

// ReadJournal implements Ledger.
func (m *MemoryLedger) ReadJournal(_ context.Context, wallet string, q store.JournalQuery) ([]store.JournalEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.JournalEntry
	for _, e := range m.journal[wallet] {
		if e.Seq > q.AfterSeq && (len(q.Kinds) == 0 || slices.Contains(q.Kinds, e.Kind)) {
			out = append(out, e)
		}
	}
	if q.Last > 0 && len(out) > q.Last {
		out = out[len(out)-q.Last:]
	}
	return out, nil
}
