package store

import (
	"context"
	"sync"
	"time"
)

// Key identifies a payment for claiming: a 32-byte hash of what makes the payment unique on its
// rail — (chain id, asset, payer, nonce) for EIP-3009, the payment hash for Lightning,
// (tab, request id) for credit. Never the signature or header bytes, which are malleable.
type Key [32]byte

// Claims records which payments have been used.
type Claims interface {
	// Claim marks key as used until expires and reports whether this call did so. The claim must
	// be atomic: "has it been used?" and "mark it used" are one operation, so of any number of
	// concurrent calls with one key — across goroutines and every process sharing the store —
	// exactly one returns true. A claim whose expiry has passed may be claimed again; callers
	// set expiry no earlier than the moment the payment stops being valid on its rail.
	Claim(ctx context.Context, key Key, expires time.Time) (bool, error)

	// Release removes a claim so the payment may be presented again. Callers release only when
	// the payment definitely moved no value; a payment whose outcome is unknown stays claimed.
	Release(ctx context.Context, key Key) error

	// SetPending marks a claimed payment whose settlement outcome is unknown (pending true) or
	// known again (false), and keeps the claim until expires. A pending payment presented again
	// resumes its settlement instead of being refused as a replay, after a restart too.
	SetPending(ctx context.Context, key Key, pending bool, expires time.Time) error

	// TakePending clears key's pending mark and reports whether this call did: of concurrent
	// callers exactly one takes it, and only that one may resume the payment.
	TakePending(ctx context.Context, key Key) (bool, error)
}

// MemoryClaims is a Claims held in process memory, for a single process whose claims may be lost
// on restart (tests, the demo). Durable stores replace it in production.
type MemoryClaims struct {
	// Now is the clock that decides expiry; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	claims  map[Key]time.Time
	pending map[Key]bool
	sweep   int
}

var _ Claims = (*MemoryClaims)(nil)

// Claim implements Claims.
func (m *MemoryClaims) Claim(_ context.Context, key Key, expires time.Time) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claims == nil {
		m.claims = make(map[Key]time.Time)
	}
	if exp, ok := m.claims[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.claims[key] = expires
	// Sweep expired claims now and then so memory tracks live payments, not history.
	if m.sweep++; m.sweep >= 1024 {
		m.sweep = 0
		for k, exp := range m.claims {
			if !now.Before(exp) {
				delete(m.claims, k)
				delete(m.pending, k)
			}
		}
	}
	return true, nil
}

// Release implements Claims.
func (m *MemoryClaims) Release(_ context.Context, key Key) error {
	m.mu.Lock()
	delete(m.claims, key)
	delete(m.pending, key)
	m.mu.Unlock()
	return nil
}

// SetPending implements Claims.
func (m *MemoryClaims) SetPending(_ context.Context, key Key, pending bool, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.claims[key]; !ok {
		return nil
	}
	if m.pending == nil {
		m.pending = make(map[Key]bool)
	}
	m.claims[key] = expires
	if pending {
		m.pending[key] = true
	} else {
		delete(m.pending, key)
	}
	return nil
}

// TakePending implements Claims.
func (m *MemoryClaims) TakePending(_ context.Context, key Key) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.claims[key]
	if !ok || !now.Before(exp) || !m.pending[key] {
		return false, nil
	}
	delete(m.pending, key)
	return true, nil
}

func (m *MemoryClaims) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
