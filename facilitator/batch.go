package facilitator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Deferred settlement trades immediacy for cost: a deferred payment is verified, reserved and
// queued, the resource is served at once, and the payment is settled later with many others in
// one QuidBatchSettler transaction (about two thirds of a lone transfer's gas per payment). Until
// its batch is mined the seller carries the risk that the payer cancels the authorization or
// empties its balance; the paywall bounds that risk with a per-payer exposure cap and by
// reserving the amount against the payer's balance.

// Defaults of the batch settings.
const (
	DefaultBatchSize     = 50
	DefaultPerItemGas    = 100_000
	DefaultBatchInterval = time.Second
	deferHold            = time.Minute
	batchLeaseFor        = 5 * time.Minute
)

// ErrNoBatchSettler reports a deferral asked of a facilitator with no batch contract configured.
var ErrNoBatchSettler = errors.New("facilitator: no batch settler configured")

// Defer verifies a payment, reserves its amount and queues it for batch settlement. The
// payment stays held for the caller (not batched) until Release; Cancel withdraws it while it
// is still queued. An invalid payment is a response with IsValid false; an error wrapping
// ErrUnavailable means nothing was decided.
func (f *Facilitator) Defer(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	if f.cfg.BatchSettler == (common.Address{}) {
		return nil, ErrNoBatchSettler
	}
	pay, perr, err := f.verify(ctx, p, req, true)
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return &x402.VerifyResponse{InvalidReason: perr.Reason, InvalidMessage: perr.Message, Payer: pay.payer()}, nil
	}
	rec, err := f.newRecord(pay)
	if err != nil {
		return nil, err
	}
	rec.State = store.StateQueued
	created, _, err := f.cfg.Store.Create(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !created {
		return &x402.VerifyResponse{InvalidReason: x402.ReasonExactNonceUsed, Payer: pay.payer()}, nil
	}
	// Hold it out of batches until the caller releases it: a handler that fails must be able
	// to withdraw the payment before anyone settles it.
	if err := f.cfg.Store.Hold(ctx, rec.Key, f.now().Add(deferHold)); err != nil {
		f.forget(rec.Key, store.StateQueued)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// The credit extended to this payer: its unsettled deferrals, capped.
	exposure := store.Key(reservationScope(0, pay.asset, pay.auth.From))
	ok, err := f.cfg.Store.Reserve(ctx, exposure, exposureKey(rec.Key), pay.auth.Value, f.cfg.MaxDeferred, 0, rec.Expires)
	if err != nil || !ok {
		f.forget(rec.Key, store.StateQueued)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return &x402.VerifyResponse{InvalidReason: x402.ReasonDeferralLimit, Payer: pay.payer()}, nil
	}
	if perr, err := f.reserve(ctx, pay); err != nil || perr != nil {
		f.forget(rec.Key, store.StateQueued)
		if err != nil {
			return nil, err
		}
		return &x402.VerifyResponse{InvalidReason: perr.Reason, InvalidMessage: perr.Message, Payer: pay.payer()}, nil
	}
	return &x402.VerifyResponse{IsValid: true, Payer: pay.payer()}, nil
}

// exposureKey is the key of a deferred payment's share of its payer's credit, distinct from
// the key of its balance reservation.
func exposureKey(k store.Key) store.Key {
	k[0] ^= 0xff
	return k
}

// Release lets a deferred payment join the next batch.
func (f *Facilitator) Release(ctx context.Context, key store.Key) error {
	if err := f.cfg.Store.Hold(ctx, key, time.Time{}); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Cancel withdraws a deferred payment that is still queued, and reports whether it did; a
// payment already in a batch is not withdrawn, and will be settled.
func (f *Facilitator) Cancel(ctx context.Context, key store.Key) (bool, error) {
	ok, err := f.cfg.Store.Delete(ctx, key, store.StateQueued)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if ok {
		f.unreserve(ctx, key)
	}
	return ok, nil
}

// RunBatcher settles queued payments every interval until ctx ends.
func (f *Facilitator) RunBatcher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			n, err := f.SettleQueued(ctx)
			if err != nil {
				f.log.Warn("settling a batch", "err", err)
			}
			if err != nil || n < f.cfg.BatchSize {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SettleQueued settles up to BatchSize queued payments of one asset in one transaction and
// returns how many it attempted. Each payment's outcome is read from the token's own logs in
// the receipt: confirmed when its authorization was used and paid the payee; sent back to the
// queue when its authorization is still unused (the batch skipped it); otherwise closed as the
// reconciler would close it, counting a transfer by someone else's transaction as paid.
// Two facilitators sharing a store never batch the same payment: each leases its items.
func (f *Facilitator) SettleQueued(ctx context.Context) (int, error) {
	if f.cfg.BatchSettler == (common.Address{}) {
		return 0, ErrNoBatchSettler
	}
	leased, err := f.cfg.Store.Lease(ctx, []store.State{store.StateQueued}, f.now(), batchLeaseFor, f.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(leased) == 0 {
		return 0, nil
	}
	// One token per transaction: the rest of the lease goes back for the next round.
	var recs []*store.Settlement
	var pays []*exactPayment
	var items []evm.BatchItem
	asset := leased[0].Asset
	for i := range leased {
		s := &leased[i]
		if s.Asset != asset {
			f.cfg.Store.Hold(ctx, s.Key, time.Time{})
			continue
		}
		pay, err := f.paymentOf(s)
		if err != nil {
			f.log.Error("unreadable queued settlement", "err", err)
			continue
		}
		if !f.now().Before(s.Expires.Add(-validBeforeMargin)) {
			// Too late to settle: the token would refuse it.
			s.State, s.Reason = store.StateFailed, string(x402.ReasonExactValidBefore)
			f.finish(ctx, s, store.StateQueued, 0)
			continue
		}
		recs, pays = append(recs, s), append(pays, pay)
		items = append(items, evm.BatchItem{Auth: pay.auth, Sig: pay.sig})
	}
	if len(items) == 0 {
		return len(leased), nil
	}
	data := evm.BatchSettleCalldata(pays[0].asset, f.cfg.PerItemGas, items)
	relayer := f.pick()
	tx, err := relayer.send(ctx, f.cfg.BatchSettler, data, evm.BatchGasLimit(f.cfg.PerItemGas, len(items)), func(tx *types.Transaction) error {
		raw, err := tx.MarshalBinary()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			rec.State, rec.Tx, rec.RawTx, rec.Relayer, rec.RelayerNonce = store.StateSubmitted, tx.Hash().Hex(), raw, relayer.addr.Hex(), tx.Nonce()
			if ok, err := f.cfg.Store.Update(ctx, rec, store.StateQueued); err != nil || !ok {
				return fmt.Errorf("recording batch membership: %v", err)
			}
		}
		return nil
	})
	switch {
	case tx == nil || (err != nil && (notSent(err) || isRejection(err))):
		// Nothing went out: back to the queue.
		for _, rec := range recs {
			if rec.State == store.StateSubmitted {
				rec.State, rec.Tx, rec.RawTx, rec.Relayer, rec.RelayerNonce = store.StateQueued, "", nil, "", 0
				f.cfg.Store.Update(ctx, rec, store.StateSubmitted)
			}
		}
		return 0, fmt.Errorf("%w: batch broadcast: %v", ErrUnavailable, err)
	case err != nil:
		f.log.Warn("batch broadcast outcome unknown", "tx", tx.Hash().Hex(), "err", err)
	}
	receipt, err := f.waitReceipt(ctx, tx.Hash())
	if err != nil {
		for _, rec := range recs {
			f.markUnknown(ctx, rec, store.StateSubmitted)
		}
		return len(items), nil
	}
	for i, rec := range recs {
		if err := f.closeBatchItem(ctx, rec, pays[i], receipt, store.StateSubmitted); err != nil {
			f.log.Warn("closing batch item", "tx", rec.Tx, "err", err)
		}
	}
	f.log.Info("batch settled", "tx", tx.Hash().Hex(), "items", len(items), "gas", receipt.GasUsed)
	return len(items), nil
}

// closeBatchItem records one item's outcome from its batch's receipt.
func (f *Facilitator) closeBatchItem(ctx context.Context, rec *store.Settlement, pay *exactPayment, r *types.Receipt, from store.State) error {
	if r.Status == types.ReceiptStatusSuccessful && hasTransfer(r.Logs, pay) {
		rec.State = store.StateConfirmed
		return f.finish(ctx, rec, from, r.BlockNumber.Uint64())
	}
	used, err := f.authorizationUsed(ctx, pay)
	if err != nil {
		return f.markUnknown(ctx, rec, from)
	}
	if !used {
		// Skipped or reverted in the batch, and still valid: queue it again.
		rec.State, rec.Tx, rec.RawTx, rec.Relayer, rec.RelayerNonce = store.StateQueued, "", nil, "", 0
		_, err := f.cfg.Store.Update(ctx, rec, from)
		return err
	}
	return f.closeUsedOr(ctx, rec, pay, from, x402.ReasonExactNonceUsed)
}
