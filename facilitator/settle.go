package facilitator

import (
	"bytes"
	"context"
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

// settlement is the facilitator's memory of one authorization it has broadcast.
type settlement struct {
	tx       common.Hash
	inFlight bool
	// confirmed is set once the receipt with the expected Transfer has been seen; reported once
	// a caller has been told so. Exactly one caller hears success for one authorization.
	confirmed bool
	reported  bool
	failed    *x402.Error
	expires   time.Time
}

// Settle verifies the payment again and moves its value on chain: it sends
// transferWithAuthorization, waits for the receipt up to ReceiptTimeout, and requires status 1
// and the token's Transfer(from, payTo, value) log.
//
// Outcomes:
//   - success with the transaction hash, reported to exactly one caller per authorization;
//   - success false with the reason; if a transaction was sent its hash is included;
//   - success false with reason settlement_pending and the hash when the receipt did not come
//     in time. Settling the same payment again then reconciles against that transaction instead
//     of broadcasting again;
//   - an error wrapping ErrUnavailable when the chain could not be asked before anything was
//     sent: no value moved, and the payment may be settled again.
func (f *Facilitator) Settle(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.SettleResponse, error) {
	pay, perr, err := f.verify(ctx, p, req, false)
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return f.failure(pay, perr, common.Hash{}), nil
	}

	f.mu.Lock()
	s, seen := f.settlements[pay.key]
	if !seen {
		s = &settlement{inFlight: true, expires: time.Unix(int64(pay.auth.ValidBefore), 0).Add(time.Hour)}
		f.settlements[pay.key] = s
		f.sweepLocked()
	}
	f.mu.Unlock()
	if seen {
		return f.again(ctx, pay, s)
	}

	claimed, err := f.cfg.Claims.Claim(ctx, pay.key, s.expires)
	if err != nil || !claimed {
		f.forget(pay.key)
		if err != nil {
			return nil, fmt.Errorf("%w: claim: %v", ErrUnavailable, err)
		}
		return f.failure(pay, &x402.Error{Reason: x402.ReasonExactNonceUsed}, common.Hash{}), nil
	}

	// eth_estimateGas is the settlement's simulation: it runs the transfer against the latest
	// state, so a nonce spent or a balance drained since /verify shows up here, before gas is paid.
	call := f.transferCall(pay)
	gas, err := f.cfg.Chain.EstimateGas(ctx, call)
	if err != nil {
		f.unclaim(pay.key)
		if !isRejection(err) {
			return nil, fmt.Errorf("%w: eth_estimateGas: %v", ErrUnavailable, err)
		}
		return f.failure(pay, f.diagnose(ctx, pay, err), common.Hash{}), nil
	}
	gas += gas / 5
	if gas > f.cfg.MaxGas {
		f.unclaim(pay.key)
		return f.failure(pay, x402.Errorf(x402.ReasonExactSimulationFailed, "settlement needs %d gas, more than the cap of %d", gas, f.cfg.MaxGas), common.Hash{}), nil
	}

	tx, err := f.relayer.send(ctx, pay.asset, call.Data, gas)
	if err != nil {
		if tx == (common.Hash{}) || isRejection(err) {
			// Nothing was broadcast, or the node refused it: no value can have moved.
			f.unclaim(pay.key)
			if isRejection(err) {
				return f.failure(pay, x402.Errorf(x402.ReasonUnexpectedSettleError, "broadcast refused: %s", revertMessage(err)), common.Hash{}), nil
			}
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// The node may have taken it. Keep the claim and let the receipt decide.
		f.log.Warn("settlement broadcast outcome unknown", "tx", tx.Hex(), "err", err)
	}
	f.mu.Lock()
	s.tx = tx
	f.mu.Unlock()
	f.log.Info("settlement sent", "tx", tx.Hex(), "payer", pay.auth.From.Hex(), "value", pay.auth.Value.String())
	return f.await(ctx, pay, s)
}

// again answers a settlement of an authorization this facilitator has already handled.
func (f *Facilitator) again(ctx context.Context, pay *exactPayment, s *settlement) (*x402.SettleResponse, error) {
	f.mu.Lock()
	inFlight, confirmed, reported, failed, tx := s.inFlight, s.confirmed, s.reported, s.failed, s.tx
	if confirmed && !reported {
		s.reported = true
	}
	f.mu.Unlock()
	switch {
	case confirmed && !reported:
		return f.success(pay, tx), nil
	case confirmed, inFlight && tx == (common.Hash{}):
		return f.failure(pay, &x402.Error{Reason: x402.ReasonExactNonceUsed}, common.Hash{}), nil
	case failed != nil:
		return f.failure(pay, failed, tx), nil
	case inFlight:
		// The first attempt is still waiting for its receipt; tell this caller where to look.
		return f.failure(pay, &x402.Error{Reason: x402.ReasonSettlementPending}, tx), nil
	}
	// The first attempt timed out waiting. Reconcile against its transaction; never resend.
	f.mu.Lock()
	s.inFlight = true
	f.mu.Unlock()
	return f.await(ctx, pay, s)
}

// await waits for the receipt of s.tx and records the outcome.
func (f *Facilitator) await(ctx context.Context, pay *exactPayment, s *settlement) (*x402.SettleResponse, error) {
	receipt, err := f.waitReceipt(ctx, s.tx)
	f.mu.Lock()
	defer f.mu.Unlock()
	s.inFlight = false
	switch {
	case err != nil:
		f.log.Warn("settlement receipt not seen in time", "tx", s.tx.Hex(), "err", err)
		return f.failure(pay, x402.Errorf(x402.ReasonSettlementPending, "receipt not seen within %s", f.cfg.ReceiptTimeout), s.tx), nil
	case receipt.Status != types.ReceiptStatusSuccessful:
		s.failed = &x402.Error{Reason: x402.ReasonExactTransactionFailed}
		return f.failure(pay, s.failed, s.tx), nil
	case !hasTransfer(receipt, pay):
		// Some tokens return without reverting on a spent nonce; only the log proves payment.
		s.failed = &x402.Error{Reason: x402.ReasonExactTransferEvent}
		return f.failure(pay, s.failed, s.tx), nil
	}
	s.confirmed, s.reported = true, true
	f.log.Info("settlement confirmed", "tx", s.tx.Hex(), "block", receipt.BlockNumber)
	return f.success(pay, s.tx), nil
}

// waitReceipt polls for a receipt, quickly at first (a devnet or a preconfirming sequencer
// answers in milliseconds), then backing off, up to ReceiptTimeout.
func (f *Facilitator) waitReceipt(ctx context.Context, tx common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReceiptTimeout)
	defer cancel()
	delay := 5 * time.Millisecond
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

// hasTransfer reports whether the receipt holds the token's Transfer(from, to, value) log.
func hasTransfer(r *types.Receipt, pay *exactPayment) bool {
	value := pay.auth.Value.Bytes32()
	for _, l := range r.Logs {
		if l.Address != pay.asset || len(l.Topics) != 3 || l.Topics[0] != evm.TransferTopic {
			continue
		}
		if common.BytesToAddress(l.Topics[1][:]) == pay.auth.From &&
			common.BytesToAddress(l.Topics[2][:]) == pay.auth.To && bytes.Equal(l.Data, value[:]) {
			return true
		}
	}
	return false
}

func (f *Facilitator) success(pay *exactPayment, tx common.Hash) *x402.SettleResponse {
	return &x402.SettleResponse{Success: true, Payer: pay.payer(), Transaction: tx.Hex(), Network: f.network}
}

func (f *Facilitator) failure(pay *exactPayment, perr *x402.Error, tx common.Hash) *x402.SettleResponse {
	r := &x402.SettleResponse{ErrorReason: perr.Reason, ErrorMessage: perr.Message, Payer: pay.payer(), Network: f.network}
	if tx != (common.Hash{}) {
		r.Transaction = tx.Hex()
	}
	return r
}

// unclaim forgets an authorization that provably moved no value, so it may be settled later.
func (f *Facilitator) unclaim(key store.Key) {
	f.forget(key)
	if err := f.cfg.Claims.Release(context.Background(), key); err != nil {
		f.log.Warn("releasing claim", "err", err)
	}
}

func (f *Facilitator) forget(key store.Key) {
	f.mu.Lock()
	delete(f.settlements, key)
	f.mu.Unlock()
}

// sweepLocked drops settlements whose authorizations can no longer be presented.
func (f *Facilitator) sweepLocked() {
	if len(f.settlements)%1024 != 0 {
		return
	}
	now := f.now()
	for k, s := range f.settlements {
		if !s.inFlight && now.After(s.expires) {
			delete(f.settlements, k)
		}
	}
}
