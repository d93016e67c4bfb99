package wallet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Budget is one limit and how much of it is used now.
type Budget struct {
	Rule      string // "budgets.hour", "budgets.day", "budgets.week", "delegation"
	Scope     string
	Window    time.Duration // 0: a delegation's whole lifetime
	Asset     evm.Asset
	Limit     evm.Amount
	Used      evm.Amount
	Remaining evm.Amount
}

// BudgetStatus returns the wallet's rolling budgets (and its delegation's) in every asset it
// has spent in during the last week.
func (w *Wallet) BudgetStatus(ctx context.Context) ([]Budget, error) {
	now := w.cfg.Now()
	refs, err := w.cfg.Ledger.SpentAssets(ctx, w.id, now.Add(-7*24*time.Hour))
	if err != nil {
		return nil, err
	}
	var out []Budget
	for _, r := range refs {
		asset, ok := w.lookupAsset(r.Network, r.Asset)
		if !ok {
			continue
		}
		b, err := w.BudgetStatusFor(ctx, asset)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// BudgetStatusFor returns the wallet's rolling budgets (and its delegation's) in one asset.
func (w *Wallet) BudgetStatusFor(ctx context.Context, asset evm.Asset) ([]Budget, error) {
	limits, err := w.standingLimits(asset)
	if err != nil {
		return nil, err
	}
	now := w.cfg.Now()
	network := networkOf(asset)
	var out []Budget
	for _, l := range limits {
		used, err := w.cfg.Ledger.SpentIn(ctx, w.id, network, asset.Address, l, now)
		if err != nil {
			return nil, err
		}
		rem, ok := l.Max.Sub(used)
		if !ok {
			rem = evm.Amount{}
		}
		out = append(out, Budget{Rule: l.Rule, Scope: l.Scope, Window: l.Window, Asset: asset, Limit: l.Max, Used: used, Remaining: rem})
	}
	return out, nil
}

// standingLimits are the limits that do not depend on a payment's payee or host: the rolling
// budgets and the delegation chain's budgets.
func (w *Wallet) standingLimits(asset evm.Asset) ([]store.SpendLimit, error) {
	p := w.cfg.Policy
	var out []store.SpendLimit
	for _, b := range []struct {
		rule, amount string
		window       time.Duration
	}{{"budgets.hour", p.Budgets.Hour, time.Hour}, {"budgets.day", p.Budgets.Day, 24 * time.Hour}, {"budgets.week", p.Budgets.Week, 7 * 24 * time.Hour}} {
		if b.amount == "" {
			continue
		}
		max, err := evm.ParseDecimal(b.amount, asset.Decimals)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q has more decimals than %s's %d", ErrPolicy, b.rule, b.amount, asset.Symbol, asset.Decimals)
		}
		out = append(out, store.SpendLimit{Rule: b.rule, Scope: store.ScopeWallet, Window: b.window, Max: max})
	}
	for _, d := range w.chain {
		max, err := evm.ParseDecimal(d.Limit, asset.Decimals)
		if err != nil {
			return nil, fmt.Errorf("wallet: delegation %s limit %q has more decimals than %s's %d", d.ID, d.Limit, asset.Symbol, asset.Decimals)
		}
		out = append(out, store.SpendLimit{Rule: "delegation", Scope: store.ScopeDelegation(d.ID), Max: max})
	}
	return out, nil
}

func (w *Wallet) lookupAsset(network string, addr common.Address) (evm.Asset, bool) {
	if w.cfg.Assets == nil {
		return evm.Asset{}, false
	}
	chainID, ok := x402.Network(network).ChainID()
	if !ok {
		return evm.Asset{}, false
	}
	return w.cfg.Assets.Lookup(chainID, addr)
}

func networkOf(a evm.Asset) string { return string(x402.EIP155(a.ChainID)) }

var zeroAddress common.Address

func parseAddressOrZero(s string) common.Address {
	a, _ := evm.ParseAddress(s)
	return a
}

// newID returns a random id with a prefix: unguessable, so an id alone cannot be forged.
func newID(prefix string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + "_" + hex.EncodeToString(b[:]), nil
}
