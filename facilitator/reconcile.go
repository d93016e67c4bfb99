package facilitator

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// transferLookback bounds the eth_getLogs search for a transfer made by someone else's
// transaction (front-running).
const transferLookback = 50_000

// Reconcile resolves every settlement whose outcome is not known yet — sent before a crash,
// or still unconfirmed when its receipt wait ran out — from the chain: the receipt and its
// Transfer log, then authorizationState(from, nonce). A transfer made by someone else's
// transaction (front-running) counts as paid. A transaction the node never received is sent
// again byte for byte, never re-signed. It returns how many settlements it closed.
//
// Several facilitators sharing a store may reconcile at once: each settlement is leased to one.
func (f *Facilitator) Reconcile(ctx context.Context) (int, error) {
	closed, err := f.forgetAbandoned(ctx)
	if err != nil {
		return 0, err
	}
	// One pass visits each open settlement once; what stays open is left for the next pass.
	seen := map[store.Key]bool{}
	for {
		batch, err := f.cfg.Store.Lease(ctx, []store.State{store.StateSubmitted, store.StateUnknown}, f.now(), time.Minute, reconcileBatch)
		if err != nil {
			return closed, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		fresh := 0
		for i := range batch {
			s := &batch[i]
			if seen[s.Key] {
				// Leased again by this pass; hand it back for the next pass at once.
				if err := f.markUnknown(ctx, s, s.State); err != nil {
					return closed, err
				}
				continue
			}
			seen[s.Key], fresh = true, fresh+1
			if err := f.reconcile(ctx, s); err != nil {
				return closed, err
			}
			if s.State.Terminal() {
				closed++
			}
		}
		if fresh == 0 || len(batch) < reconcileBatch {
			return closed, nil
		}
	}
}

// reconcileBatch is how many settlements one lease takes.
const reconcileBatch = 64

// abandonedAfter is how long a settlement may stay verified. Settle moves it on within
// milliseconds; one older than this belongs to a process that died before sending anything.
const abandonedAfter = time.Minute

// forgetAbandoned deletes settlements left in the verified state by a process that died before
// broadcasting: the transaction is persisted before it is sent, so nothing of theirs was sent,
// and deleting them makes their payments usable again.
func (f *Facilitator) forgetAbandoned(ctx context.Context) (int, error) {
	n := 0
	for {
		batch, err := f.cfg.Store.Lease(ctx, []store.State{store.StateVerified}, f.now(), time.Minute, 64)
		if err != nil {
			return n, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if len(batch) == 0 {
			return n, nil
		}
		for _, s := range batch {
			if f.now().Sub(s.Updated) < abandonedAfter {
				continue
			}
			if ok, err := f.cfg.Store.Delete(ctx, s.Key, store.StateVerified); err != nil {
				return n, fmt.Errorf("%w: %v", ErrUnavailable, err)
			} else if ok {
				f.unreserve(ctx, s.Key)
				n++
			}
		}
	}
}

// RunReconciler reconciles now and then every interval until ctx ends.
func (f *Facilitator) RunReconciler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := f.Reconcile(ctx); err != nil {
			f.log.Warn("reconciling settlements", "err", err)
		} else if n > 0 {
			f.log.Info("reconciled settlements", "closed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile moves s toward a terminal state from what the chain says, updating s in place.
func (f *Facilitator) reconcile(ctx context.Context, s *store.Settlement) error {
	pay, err := f.paymentOf(s)
	if err != nil {
		f.log.Error("unreadable settlement record", "err", err)
		return nil
	}
	from := s.State
	tx := common.HexToHash(s.Tx)
	receipt, err := f.cfg.Chain.TransactionReceipt(ctx, tx)
	switch {
	case err == nil:
		return f.closeFromReceipt(ctx, s, pay, from, receipt)
	case !errors.Is(err, ethereum.NotFound):
		return fmt.Errorf("%w: receipt: %v", ErrUnavailable, err)
	}
	if _, _, err := f.cfg.Chain.TransactionByHash(ctx, tx); err == nil {
		return f.markUnknown(ctx, s, from) // in the mempool; wait
	} else if !errors.Is(err, ethereum.NotFound) {
		return fmt.Errorf("%w: transaction: %v", ErrUnavailable, err)
	}
	// The node does not know our transaction. Either the authorization was used some other way,
	// or our transaction can never be mined, or it was lost before reaching the node.
	used, err := f.authorizationUsed(ctx, pay)
	if err != nil {
		return err
	}
	if used {
		return f.closeUsedOr(ctx, s, pay, from, x402.ReasonExactNonceUsed)
	}
	mined, err := f.cfg.Chain.NonceAt(ctx, common.HexToAddress(s.Relayer), nil)
	if err != nil {
		return fmt.Errorf("%w: nonce: %v", ErrUnavailable, err)
	}
	if mined > s.RelayerNonce {
		// Our nonce went to another transaction. Look once more for our receipt, which may have
		// landed between the two questions.
		if receipt, err := f.cfg.Chain.TransactionReceipt(ctx, tx); err == nil {
			return f.closeFromReceipt(ctx, s, pay, from, receipt)
		}
		// Ours can never be mined and the authorization is unused: nothing moved. Forget the
		// settlement so the payment, still valid, can be settled afresh.
		if ok, err := f.cfg.Store.Delete(ctx, s.Key, from); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		} else if ok {
			f.unreserve(ctx, s.Key)
			f.log.Info("forgot a settlement whose transaction was dropped", "tx", s.Tx)
		}
		return nil
	}
	if len(s.RawTx) > 0 && f.now().Before(s.Expires) {
		var t types.Transaction
		if err := t.UnmarshalBinary(s.RawTx); err == nil {
			if err := f.cfg.Chain.SendTransaction(ctx, &t); err != nil {
				f.log.Warn("resending settlement", "tx", s.Tx, "err", err)
			} else {
				f.log.Info("resent settlement the node had not received", "tx", s.Tx)
			}
		}
	} else if !f.now().Before(s.Expires) {
		// Past validBefore the token refuses the authorization: it can never be used now.
		s.State, s.Reason = store.StateFailed, string(x402.ReasonExactValidBefore)
		return f.finish(ctx, s, from, 0)
	}
	return f.markUnknown(ctx, s, from)
}

func (f *Facilitator) closeFromReceipt(ctx context.Context, s *store.Settlement, pay *exactPayment, from store.State, r *types.Receipt) error {
	if f.inBatch(s) {
		return f.closeBatchItem(ctx, s, pay, r, from)
	}
	if reason := f.judge(ctx, pay, r); reason != "" {
		// Ours failed; someone else's transaction may still have paid.
		return f.closeUsedOr(ctx, s, pay, from, reason)
	}
	s.State = store.StateConfirmed
	return f.finish(ctx, s, from, r.BlockNumber.Uint64())
}

// inBatch reports whether s was sent in a batch transaction.
func (f *Facilitator) inBatch(s *store.Settlement) bool {
	if f.cfg.BatchSettler == (common.Address{}) || len(s.RawTx) == 0 {
		return false
	}
	var t types.Transaction
	return t.UnmarshalBinary(s.RawTx) == nil && t.To() != nil && *t.To() == f.cfg.BatchSettler
}

// closeUsedOr closes s as confirmed if the chain holds a transfer of this authorization to the
// payee in any transaction, and as failed with reason otherwise (the authorization was used or
// cancelled without paying the payee: invalid_exact_evm_nonce_already_used).
func (f *Facilitator) closeUsedOr(ctx context.Context, s *store.Settlement, pay *exactPayment, from store.State, reason x402.Reason) error {
	paidBy, block, err := f.findTransfer(ctx, pay)
	if err != nil {
		return err
	}
	if paidBy != (common.Hash{}) {
		if paidBy.Hex() != s.Tx {
			f.log.Info("payment settled by another transaction", "tx", paidBy.Hex(), "ours", s.Tx)
		}
		s.State, s.Tx, s.Reason = store.StateConfirmed, paidBy.Hex(), ""
		return f.finish(ctx, s, from, block)
	}
	s.State, s.Reason = store.StateFailed, string(reason)
	return f.finish(ctx, s, from, 0)
}

// markUnknown records that s is still unresolved; writing it also ends the reconciler's lease,
// so the next pass looks at it again.
func (f *Facilitator) markUnknown(ctx context.Context, s *store.Settlement, from store.State) error {
	s.State = store.StateUnknown
	if _, err := f.cfg.Store.Update(ctx, s, from); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

func (f *Facilitator) authorizationUsed(ctx context.Context, pay *exactPayment) (bool, error) {
	ret, err := f.cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &pay.asset, Data: evm.AuthorizationStateCalldata(pay.auth.From, pay.auth.Nonce)}, nil)
	if err != nil {
		return false, fmt.Errorf("%w: authorizationState: %v", ErrUnavailable, err)
	}
	used, err := evm.DecodeBool(ret)
	if err != nil {
		return false, fmt.Errorf("authorizationState: %w", err)
	}
	return used, nil
}

// findTransfer returns the transaction holding this authorization's transfer to the payee, if
// any. EIP-3009 makes the authorization single-use, so a Transfer(from, to, value) from the
// token in a block where the authorization's AuthorizationUsed event also appears is it.
func (f *Facilitator) findTransfer(ctx context.Context, pay *exactPayment) (common.Hash, uint64, error) {
	head, err := f.cfg.Chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return common.Hash{}, 0, fmt.Errorf("%w: head: %v", ErrUnavailable, err)
	}
	fromBlock := new(big.Int)
	if n := head.Number.Uint64(); n > transferLookback {
		fromBlock.SetUint64(n - transferLookback)
	}
	used, err := f.cfg.Chain.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: fromBlock, Addresses: []common.Address{pay.asset},
		Topics: [][]common.Hash{{evm.AuthorizationUsedTopic}, {common.BytesToHash(pay.auth.From[:])}, {common.Hash(pay.auth.Nonce)}},
	})
	if err != nil {
		return common.Hash{}, 0, fmt.Errorf("%w: logs: %v", ErrUnavailable, err)
	}
	for _, u := range used {
		r, err := f.cfg.Chain.TransactionReceipt(ctx, u.TxHash)
		if err != nil {
			return common.Hash{}, 0, fmt.Errorf("%w: receipt: %v", ErrUnavailable, err)
		}
		if r.Status == types.ReceiptStatusSuccessful && hasTransfer(r.Logs, pay) {
			return u.TxHash, r.BlockNumber.Uint64(), nil
		}
	}
	return common.Hash{}, 0, nil
}
