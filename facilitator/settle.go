package facilitator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Settle verifies the payment again and moves its value on chain: it sends
// transferWithAuthorization, waits for the receipt up to ReceiptTimeout, and requires status 1
// and the token's Transfer(from, payTo, value) log. Every step is persisted before the effect
// that follows it (see store.State).
//
// Outcomes:
//   - success with the transaction hash, reported to exactly one caller per authorization;
//   - success false with the reason; if a transaction was sent its hash is included;
//   - success false with reason settlement_pending and the hash when the receipt did not come
//     in time. Settling the same payment again then reconciles against that transaction instead
//     of broadcasting again;
//   - an error wrapping ErrUnavailable when the chain or store could not be asked before anything
//     was sent: no value moved, and the payment may be settled again.
func (f *Facilitator) Settle(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.SettleResponse, error) {
	pay, perr, err := f.verify(ctx, p, req, false)
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return f.failure(pay, perr, ""), nil
	}
	rec, err := f.newRecord(pay)
	if err != nil {
		return nil, err
	}
	created, existing, err := f.cfg.Store.Create(ctx, rec)
	if errors.Is(err, store.ErrNotFound) {
		// Another caller held the payment and let it go between our insert and our read.
		created, existing, err = f.cfg.Store.Create(ctx, rec)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !created {
		return f.again(ctx, pay, existing)
	}
	if perr, err := f.reserve(ctx, pay); err != nil || perr != nil {
		f.forget(rec.Key, store.StateVerified)
		if err != nil {
			return nil, err
		}
		return f.failure(pay, perr, ""), nil
	}

	// eth_estimateGas is the settlement's simulation: it runs the transfer against the latest
	// state, so a nonce spent or a balance drained since /verify shows up here, before gas is paid.
	call := f.transferCall(pay)
	gas, err := f.cfg.Chain.EstimateGas(ctx, call)
	if err != nil {
		if !isRejection(err) {
			f.forget(rec.Key, store.StateVerified)
			return nil, fmt.Errorf("%w: eth_estimateGas: %v", ErrUnavailable, err)
		}
		perr, derr := f.diagnose(ctx, pay, err)
		switch {
		case derr != nil:
			f.forget(rec.Key, store.StateVerified)
			return nil, derr
		case perr != nil:
			f.forget(rec.Key, store.StateVerified)
			return f.failure(pay, perr, ""), nil
		}
		// Valid from the next block on; estimate with the cap, since the head cannot run it.
		gas = f.cfg.MaxGas * 5 / 6
	}
	gas += gas / 5
	if gas > f.cfg.MaxGas {
		f.forget(rec.Key, store.StateVerified)
		return f.failure(pay, x402.Errorf(x402.ReasonExactSimulationFailed, "settlement needs %d gas, more than the cap of %d", gas, f.cfg.MaxGas), ""), nil
	}

	relayer := f.pick()
	tx, err := relayer.send(ctx, pay.asset, call.Data, gas, func(tx *types.Transaction) error {
		raw, err := tx.MarshalBinary()
		if err != nil {
			return err
		}
		rec.State, rec.Tx, rec.RawTx, rec.Relayer, rec.RelayerNonce = store.StateSubmitted, tx.Hash().Hex(), raw, relayer.addr.Hex(), tx.Nonce()
		ok, err := f.cfg.Store.Update(ctx, rec, store.StateVerified)
		if err == nil && !ok {
			err = errors.New("settlement changed under its owner")
		}
		return err
	})
	switch {
	case errors.Is(err, errFeeTooHigh):
		f.forget(rec.Key, store.StateVerified)
		return f.failure(pay, x402.Errorf(x402.ReasonUnexpectedSettleError, "%v", err), ""), nil
	case tx == nil:
		// Nothing was signed into the record, so nothing can have been sent.
		f.forget(rec.Key, store.StateVerified)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case err != nil && notSent(err):
		// The transaction never reached the node; no value moved, and it may be settled again.
		f.forget(rec.Key, store.StateSubmitted)
		return nil, fmt.Errorf("%w: broadcast: %v", ErrUnavailable, err)
	case err != nil && isRejection(err):
		// The node refused the transaction; no value moved.
		f.forget(rec.Key, store.StateSubmitted)
		f.log.Warn("settlement broadcast refused", "err", err)
		return f.failure(pay, x402.Errorf(x402.ReasonUnexpectedSettleError, "broadcast refused: %s", revertMessage(err)), ""), nil
	case err != nil:
		f.log.Warn("settlement broadcast outcome unknown", "tx", tx.Hash().Hex(), "err", err)
	}
	f.log.Info("settlement sent", "tx", tx.Hash().Hex(), "payer", pay.auth.From.Hex(), "value", pay.auth.Value.String())
	return f.await(ctx, pay, rec)
}

// storedPayment is what a settlement record keeps to reconcile the payment after a restart.
type storedPayment struct {
	Authorization x402.ExactEVMAuthorization `json:"authorization"`
	Signature     string                     `json:"signature"`
	Name          string                     `json:"name"`
	Version       string                     `json:"version"`
}

func (f *Facilitator) newRecord(pay *exactPayment) (*store.Settlement, error) {
	raw, err := json.Marshal(storedPayment{Authorization: pay.auth.Wire(), Signature: pay.sig.String(), Name: pay.domain.Name, Version: pay.domain.Version})
	if err != nil {
		return nil, err
	}
	return &store.Settlement{
		Key: pay.key, State: store.StateVerified, Network: string(f.network),
		Payer: pay.auth.From.Hex(), Asset: pay.asset.Hex(), PayTo: pay.auth.To.Hex(), Amount: pay.auth.Value,
		Payment: raw, Expires: time.Unix(int64(pay.auth.ValidBefore), 0),
	}, nil
}

// paymentOf rebuilds the payment of a stored settlement.
func (f *Facilitator) paymentOf(s *store.Settlement) (*exactPayment, error) {
	var sp storedPayment
	if err := json.Unmarshal(s.Payment, &sp); err != nil {
		return nil, fmt.Errorf("settlement %x: %w", s.Key[:4], err)
	}
	pay := &exactPayment{key: s.Key, parsed: true}
	var err error
	if pay.auth, err = evm.ParseAuthorization(sp.Authorization); err != nil {
		return nil, err
	}
	if pay.sig, err = evm.ParseSignature(sp.Signature); err != nil {
		return nil, err
	}
	if pay.asset, err = evm.ParseAddress(s.Asset); err != nil {
		return nil, err
	}
	pay.domain = evm.Domain{Name: sp.Name, Version: sp.Version, ChainID: f.cfg.ChainID, VerifyingContract: pay.asset}
	return pay, nil
}

// reserve holds the payment's value against the payer's on-chain balance, so concurrent
// payments from one payer are admitted only while they fit in it together.
func (f *Facilitator) reserve(ctx context.Context, pay *exactPayment) (*x402.Error, error) {
	// Verify reserved it already, as a rule: then there is no balance to read.
	if held, err := f.cfg.Store.Reserved(ctx, pay.key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	} else if held {
		return nil, nil
	}
	// The balance is read at a known block, so reservations settled after it still count.
	head, err := f.cfg.Chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: head: %v", ErrUnavailable, err)
	}
	ret, err := f.cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &pay.asset, Data: evm.BalanceOfCalldata(pay.auth.From)}, head.Number)
	if err != nil {
		if !isRejection(err) {
			return nil, fmt.Errorf("%w: balanceOf: %v", ErrUnavailable, err)
		}
		return &x402.Error{Reason: x402.ReasonExactEIP3009Unsupported, Message: "balanceOf reverted"}, nil
	}
	balance, err := evm.DecodeUint256(ret)
	if err != nil {
		return &x402.Error{Reason: x402.ReasonExactEIP3009Unsupported, Message: "balanceOf: " + err.Error()}, nil
	}
	scope := store.Key(reservationScope(f.cfg.ChainID, pay.asset, pay.auth.From))
	ok, err := f.cfg.Store.Reserve(ctx, scope, pay.key, pay.auth.Value, balance, head.Number.Uint64(), time.Unix(int64(pay.auth.ValidBefore), 0))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		return x402.Errorf(x402.ReasonExactInsufficientBalance, "balance is committed to pending payments"), nil
	}
	return nil, nil
}

func reservationScope(chainID uint64, asset, payer common.Address) [32]byte {
	// The claim key of an authorization with a zero nonce is unique per (chain, asset, payer) and
	// lives in a different table, so it serves as the scope.
	a := evm.Authorization{From: payer}
	return a.ClaimKey(chainID, asset)
}

// again answers a settlement of an authorization that already has a record, here or in another
// instance sharing the store.
func (f *Facilitator) again(ctx context.Context, pay *exactPayment, s *store.Settlement) (*x402.SettleResponse, error) {
	switch s.State {
	case store.StateVerified, store.StateQueued:
		// Another caller is settling it right now, or it is committed to a batch.
		return f.failure(pay, &x402.Error{Reason: x402.ReasonExactNonceUsed}, ""), nil
	case store.StateConfirmed:
		return f.reportConfirmed(ctx, pay, s)
	case store.StateFailed:
		return f.failure(pay, &x402.Error{Reason: x402.Reason(s.Reason)}, s.Tx), nil
	}
	if s.State == store.StateSubmitted && f.now().Sub(s.Updated) < f.cfg.ReceiptTimeout+time.Minute {
		// Its owner is waiting for the receipt right now and will record the outcome.
		return f.failure(pay, &x402.Error{Reason: x402.ReasonSettlementPending}, s.Tx), nil
	}
	// Unknown (or abandoned by a dead owner): find out now, never send again.
	if err := f.reconcile(ctx, s); err != nil {
		f.log.Warn("reconciling on a repeated settle", "tx", s.Tx, "err", err)
		return f.pending(pay, s.Tx), nil
	}
	switch s.State {
	case store.StateConfirmed:
		return f.reportConfirmed(ctx, pay, s)
	case store.StateFailed:
		return f.failure(pay, &x402.Error{Reason: x402.Reason(s.Reason)}, s.Tx), nil
	}
	return f.failure(pay, &x402.Error{Reason: x402.ReasonSettlementPending}, s.Tx), nil
}

// reportConfirmed tells the first caller to ask that a confirmed settlement succeeded, and every
// later one that the authorization is used.
func (f *Facilitator) reportConfirmed(ctx context.Context, pay *exactPayment, s *store.Settlement) (*x402.SettleResponse, error) {
	first, err := f.cfg.Store.Report(ctx, s.Key)
	if err != nil {
		f.log.Error("reporting settlement", "tx", s.Tx, "err", err)
		return f.pending(pay, s.Tx), nil
	}
	if !first {
		// Name the transaction: a seller resuming its own unfinished request (its claim kept
		// it from serving this payment) can collect on it, since the success may have been
		// lost on the way to it.
		return f.failure(pay, &x402.Error{Reason: x402.ReasonExactNonceUsed, Message: "already settled"}, s.Tx), nil
	}
	return &x402.SettleResponse{Success: true, Payer: pay.payer(), Transaction: s.Tx, Network: f.networkFor(pay)}, nil
}

// await waits for the receipt of rec's transaction and records the outcome.
func (f *Facilitator) await(ctx context.Context, pay *exactPayment, rec *store.Settlement) (*x402.SettleResponse, error) {
	tx := common.HexToHash(rec.Tx)
	receipt, err := f.waitReceipt(ctx, tx)
	if err != nil {
		f.log.Warn("settlement receipt not seen in time", "tx", rec.Tx, "err", err)
		rec.State = store.StateUnknown
		if _, err := f.cfg.Store.Update(context.WithoutCancel(ctx), rec, store.StateSubmitted); err != nil {
			f.log.Error("recording unknown settlement", "tx", rec.Tx, "err", err)
		}
		return f.failure(pay, x402.Errorf(x402.ReasonSettlementPending, "receipt not seen within %s", f.cfg.ReceiptTimeout), rec.Tx), nil
	}
	// Ours may have failed because someone else's transaction used the authorization first and
	// paid the payee (front-running): closeFromReceipt counts that as paid.
	if err := f.closeFromReceipt(ctx, rec, pay, store.StateSubmitted, receipt); err != nil {
		return f.pending(pay, rec.Tx), nil
	}
	if rec.State != store.StateConfirmed {
		return f.failure(pay, &x402.Error{Reason: x402.Reason(rec.Reason)}, rec.Tx), nil
	}
	f.log.Info("settlement confirmed", "tx", rec.Tx, "block", receipt.BlockNumber)
	// Another instance reconciling the same settlement may have confirmed it first; whoever
	// wins the report tells its caller.
	return f.reportConfirmed(ctx, pay, rec)
}

// pending answers a settlement whose outcome is known on chain, or may be, but could not be
// recorded: the caller must ask again, and must not take it as unpaid.
func (f *Facilitator) pending(pay *exactPayment, tx string) *x402.SettleResponse {
	return f.failure(pay, x402.Errorf(x402.ReasonSettlementPending, "outcome not yet recorded"), tx)
}

// judge returns why a mined settlement did not pay, or "" when it did.
func (f *Facilitator) judge(ctx context.Context, pay *exactPayment, r *types.Receipt) x402.Reason {
	switch {
	case r.Status != types.ReceiptStatusSuccessful:
		return x402.ReasonExactTransactionFailed
	case !hasTransfer(r.Logs, pay):
		// Some tokens return without reverting on a spent nonce; only the log proves payment.
		return x402.ReasonExactTransferEvent
	}
	return ""
}

// finish records a terminal outcome. A confirmed payment's reservation is marked with the block
// it was mined in (balances read from then on include it); a failed one's is released. Losing
// the compare-and-set to another process that recorded the same outcome first is not an error.
func (f *Facilitator) finish(ctx context.Context, rec *store.Settlement, from store.State, block uint64) error {
	ctx = context.WithoutCancel(ctx)
	for {
		won, err := f.cfg.Store.Update(ctx, rec, from)
		if err != nil {
			// The reconciler will find the settlement still open and finish it.
			f.log.Error("recording settlement outcome", "tx", rec.Tx, "state", rec.State, "err", err)
			return err
		}
		if won {
			break
		}
		// Someone else moved it: a reconciler marking it unknown, or another instance
		// recording the same outcome. Finish from where it is now, unless it is finished.
		cur, err := f.cfg.Store.Get(ctx, rec.Key)
		if err != nil {
			return err
		}
		if cur.State.Terminal() || cur.State == from {
			return nil
		}
		from = cur.State
	}
	if rec.State == store.StateConfirmed {
		if err := f.cfg.Store.Settled(ctx, rec.Key, block); err != nil {
			f.log.Warn("updating reservation", "err", err)
		}
		// A settled deferral no longer counts against its payer's credit.
		if err := f.cfg.Store.Unreserve(ctx, exposureKey(rec.Key)); err != nil {
			f.log.Warn("releasing credit", "err", err)
		}
		return nil
	}
	f.unreserve(ctx, rec.Key)
	return nil
}

// unreserve releases a payment's balance reservation and, if it was deferred, its credit.
func (f *Facilitator) unreserve(ctx context.Context, key store.Key) {
	for _, k := range []store.Key{key, exposureKey(key)} {
		if err := f.cfg.Store.Unreserve(ctx, k); err != nil {
			f.log.Warn("releasing reservation", "err", err)
		}
	}
}

// forget deletes a settlement that provably moved no value, with its reservation, so the
// payment may be settled later.
func (f *Facilitator) forget(key store.Key, from store.State) {
	ctx := context.Background()
	if _, err := f.cfg.Store.Delete(ctx, key, from); err != nil {
		f.log.Warn("forgetting unsent settlement", "err", err)
	}
	f.unreserve(ctx, key)
}

// waitReceipt polls for a receipt, quickly at first (a devnet or a preconfirming sequencer
// answers in milliseconds), then backing off, up to ReceiptTimeout.
func (f *Facilitator) waitReceipt(ctx context.Context, tx common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReceiptTimeout)
	defer cancel()
	delay := 2 * time.Millisecond
	for {
		r, err := f.cfg.Chain.TransactionReceipt(ctx, tx)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) && ctx.Err() != nil {
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if delay *= 2; delay > 500*time.Millisecond {
			delay = 500 * time.Millisecond
		}
	}
}

// hasTransfer reports whether logs prove that this authorization paid: the token's
// AuthorizationUsed(from, nonce) log with the Transfer(from, to, value) it caused next to it
// among the token's logs. Tying the transfer to the authorization's own event, not just to a
// matching (from, to, value), keeps two equal payments in one batch transaction apart; and a
// token that returns without reverting on a spent nonce emits neither.
func hasTransfer(logs []*types.Log, pay *exactPayment) bool {
	var own []*types.Log
	for _, l := range logs {
		if l.Address == pay.asset {
			own = append(own, l)
		}
	}
	for i, l := range own {
		if !isAuthorizationUsed(l, pay) {
			continue
		}
		if (i+1 < len(own) && isTransfer(own[i+1], pay)) || (i > 0 && isTransfer(own[i-1], pay)) {
			return true
		}
	}
	return false
}

func isAuthorizationUsed(l *types.Log, pay *exactPayment) bool {
	return len(l.Topics) == 3 && l.Topics[0] == evm.AuthorizationUsedTopic &&
		common.BytesToAddress(l.Topics[1][:]) == pay.auth.From && l.Topics[2] == common.Hash(pay.auth.Nonce)
}

func isTransfer(l *types.Log, pay *exactPayment) bool {
	value := pay.auth.Value.Bytes32()
	return len(l.Topics) == 3 && l.Topics[0] == evm.TransferTopic &&
		common.BytesToAddress(l.Topics[1][:]) == pay.auth.From &&
		common.BytesToAddress(l.Topics[2][:]) == pay.auth.To && bytes.Equal(l.Data, value[:])
}

func (f *Facilitator) failure(pay *exactPayment, perr *x402.Error, tx string) *x402.SettleResponse {
	return &x402.SettleResponse{ErrorReason: perr.Reason, ErrorMessage: perr.Message, Payer: pay.payer(), Network: f.networkFor(pay), Transaction: tx}
}

// networkFor names the network as the payment's x402 version does: v1 uses its fixed names
// ("base-sepolia"), v2 CAIP-2 ("eip155:84532").
func (f *Facilitator) networkFor(pay *exactPayment) x402.Network {
	if pay != nil && pay.version == x402.V1 {
		if name, ok := f.network.V1Name(); ok {
			return x402.Network(name)
		}
	}
	return f.network
}
