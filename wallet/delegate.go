package wallet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

// Scope restricts what a delegated wallet may pay for. Empty lists restrict nothing; a child
// is also bound by its ancestors' scopes and the owner's policy.
type Scope struct {
	// Hosts are host patterns as in Policy.Allow.Hosts.
	Hosts []string
	// Payees are addresses.
	Payees []string
	// Routes are "METHOD /path/prefix" or "/path/prefix" (any method).
	Routes []string
}

// ErrUnknownDelegation reports a delegation id the ledger does not hold for this wallet.
var ErrUnknownDelegation = errors.New("wallet: no such delegation")

// Delegate hands a sub-agent a child wallet: same key and ledger, with a budget of limit (in
// each asset's own units) for ttl, within scope. The child's spend counts against itself and
// every ancestor, atomically; Revoke stops it at once. The delegation is persisted in the
// ledger, so another process can open it by id (OpenDelegation).
func (w *Wallet) Delegate(ctx context.Context, limit string, ttl time.Duration, scope Scope) (*Wallet, error) {
	if !validDecimal(limit) {
		return nil, fmt.Errorf("wallet: delegation limit %q is not a decimal amount", limit)
	}
	if ttl <= 0 {
		return nil, errors.New("wallet: a delegation needs a positive lifetime")
	}
	for _, h := range scope.Hosts {
		if _, err := normalizePattern(h); err != nil {
			return nil, fmt.Errorf("wallet: delegation host %q: %v", h, err)
		}
	}
	for _, p := range scope.Payees {
		if _, err := evm.ParseAddress(p); err != nil {
			return nil, fmt.Errorf("wallet: delegation payee %q is not an address", p)
		}
	}
	id, err := newID("dlg")
	if err != nil {
		return nil, err
	}
	now := w.cfg.Now()
	d := store.Delegation{ID: id, Wallet: w.id, Parent: w.delegationID(), Limit: limit, Hosts: scope.Hosts,
		Payees: scope.Payees, Routes: scope.Routes, Created: now, Expires: now.Add(ttl)}
	e := store.JournalEntry{Wallet: w.id, Time: now, Kind: store.KindDelegated, Delegation: id,
		Detail: fmt.Sprintf("limit %s for %s, parent %q, hosts %v, payees %v, routes %v", limit, ttl, d.Parent, scope.Hosts, scope.Payees, scope.Routes)}
	if err := w.cfg.Ledger.CreateDelegation(ctx, d, e); err != nil {
		return nil, err
	}
	return w.child(append([]store.Delegation{d}, w.chain...)), nil
}

// OpenDelegation returns the child wallet of a delegation made by this wallet or any of its
// descendants, e.g. by another process sharing the ledger.
func (w *Wallet) OpenDelegation(ctx context.Context, id string) (*Wallet, error) {
	var chain []store.Delegation
	for next := id; next != ""; {
		d, err := w.cfg.Ledger.GetDelegation(ctx, w.id, next)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrUnknownDelegation, next)
		}
		if err != nil {
			return nil, err
		}
		chain = append(chain, d)
		next = d.Parent
		if len(chain) > 64 {
			return nil, errors.New("wallet: delegation chain too deep")
		}
	}
	// The chain must descend from this wallet's own delegation, if it has one.
	if own := w.delegationID(); own != "" {
		found := false
		for _, d := range chain {
			if d.ID == own {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s is not under %s", ErrUnknownDelegation, id, own)
		}
	}
	return w.child(chain), nil
}

// Revoke stops a delegation (and every delegation under it) at once: their next reservation
// fails with ErrDelegationRevoked. A delegated wallet may revoke only delegations under its own.
func (w *Wallet) Revoke(ctx context.Context, id string) error {
	if own := w.delegationID(); own != "" {
		// A delegated wallet may revoke only its own delegation and those under it.
		if _, err := w.OpenDelegation(ctx, id); err != nil {
			return err
		}
	}
	now := w.cfg.Now()
	e := store.JournalEntry{Wallet: w.id, Time: now, Kind: store.KindRevoked, Delegation: id}
	err := w.cfg.Ledger.RevokeDelegation(ctx, w.id, id, now, e)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownDelegation, id)
	}
	return err
}

// DelegationID returns the id of the delegation this wallet spends under ("" for the owner's
// wallet).
func (w *Wallet) DelegationID() string { return w.delegationID() }

func (w *Wallet) delegationID() string {
	if len(w.chain) == 0 {
		return ""
	}
	return w.chain[0].ID
}

func (w *Wallet) child(chain []store.Delegation) *Wallet {
	c := *w
	c.chain = chain
	return &c
}

// inScope checks a payment against the scopes of the wallet's delegation and its ancestors.
func (w *Wallet) inScope(host string, payee string, method, path string) error {
	for _, d := range w.chain {
		if len(d.Hosts) > 0 && !hostMatches(host, d.Hosts) {
			return &PolicyError{Rule: "delegation.hosts", Detail: fmt.Sprintf("%s not in delegation %s", host, d.ID), Err: ErrOutOfScope}
		}
		if len(d.Payees) > 0 && !addressIn(parseAddressOrZero(payee), d.Payees) {
			return &PolicyError{Rule: "delegation.payees", Detail: fmt.Sprintf("%s not in delegation %s", payee, d.ID), Err: ErrOutOfScope}
		}
		if len(d.Routes) > 0 && !routeMatches(method, path, d.Routes) {
			return &PolicyError{Rule: "delegation.routes", Detail: fmt.Sprintf("%s %s not in delegation %s", method, path, d.ID), Err: ErrOutOfScope}
		}
	}
	return nil
}

// routeMatches reports whether method and path match one route: "METHOD /prefix" or "/prefix".
// A prefix matches itself and what lies below it ("/a" matches "/a" and "/a/b", not "/ab").
func routeMatches(method, path string, routes []string) bool {
	for _, r := range routes {
		m, p, ok := strings.Cut(strings.TrimSpace(r), " ")
		if !ok {
			m, p = "", m
		}
		if m != "" && !strings.EqualFold(m, method) {
			continue
		}
		p = strings.TrimSuffix(strings.TrimSpace(p), "/")
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}
