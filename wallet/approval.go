package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quidpay/quid/store"
)

// ErrUnknownApproval reports an approval id the ledger does not hold for this wallet.
var ErrUnknownApproval = errors.New("wallet: no such approval")

// ErrNotOwner reports an owner's action (deciding an approval) asked of a delegated wallet:
// a sub-agent must not approve payments.
var ErrNotOwner = errors.New("wallet: only the owner's wallet may do this, not a delegation")

// PendingApprovals lists the payments waiting for a human, oldest first (expired ones too,
// until denied: their Expires says so).
func (w *Wallet) PendingApprovals(ctx context.Context) ([]store.Approval, error) {
	return w.cfg.Ledger.ListApprovals(ctx, w.id, store.ApprovalPending)
}

// Approval returns one approval.
func (w *Wallet) Approval(ctx context.Context, id string) (store.Approval, error) {
	a, err := w.cfg.Ledger.GetApproval(ctx, w.id, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, fmt.Errorf("%w: %s", ErrUnknownApproval, id)
	}
	return a, err
}

// Approve releases a pending payment: the agent's retry with Intent.ApprovalID pays it, once.
// who (a person's name or login) is journaled with the decision.
func (w *Wallet) Approve(ctx context.Context, id, who string) error {
	return w.decide(ctx, id, true, who, "")
}

// Deny refuses a pending payment; the agent's retry fails with ErrApprovalDenied. who and
// reason are journaled.
func (w *Wallet) Deny(ctx context.Context, id, who, reason string) error {
	return w.decide(ctx, id, false, who, reason)
}

func (w *Wallet) decide(ctx context.Context, id string, approve bool, who, reason string) error {
	if len(w.chain) > 0 {
		return ErrNotOwner
	}
	if who == "" {
		return errors.New("wallet: an approval decision needs who made it")
	}
	a, err := w.Approval(ctx, id)
	if err != nil {
		return err
	}
	if approve && !w.cfg.Now().Before(a.Expires) {
		return fmt.Errorf("%w: approval %s expired at %s", ErrApprovalInvalid, id, a.Expires.UTC().Format(time.RFC3339))
	}
	kind := store.KindDenied
	if approve {
		kind = store.KindApproved
	}
	e := store.JournalEntry{Wallet: w.id, Time: w.cfg.Now(), Kind: kind, Rule: a.Rule, Detail: reason,
		Purpose: a.Purpose, TaskID: a.TaskID, Delegation: a.Delegation, Approval: a.ID, Actor: who,
		Payee: a.Payee, Host: a.Host, Route: a.Method + " " + a.URL, Rail: Rail, Network: a.Network,
		Asset: a.Asset, Amount: a.Amount}
	err = w.cfg.Ledger.DecideApproval(ctx, w.id, id, approve, who, reason, e.Time, e)
	if errors.Is(err, store.ErrNotPending) {
		return fmt.Errorf("wallet: approval %s is no longer pending: %w", id, err)
	}
	return err
}
