package evm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Batch settlement: many EIP-3009 authorizations of one token in one transaction, through
// QuidBatchSettler (evm/contracts/QuidBatchSettler.sol; bindings in evm/contracts/batch). The
// settler calls transferWithAuthorization once per item, in order, with a fixed gas allowance,
// and logs Failed(token, from, nonce, reason) for each item whose call reverted or was not
// attempted. It logs nothing for an item whose call returned: the token's own
// AuthorizationUsed and Transfer logs from that call are the record, and DecodeBatchResults
// reads each item's outcome from its place in the receipt. One bad authorization never reverts
// the others. This file encodes the call, sizes its gas limit and decodes its receipt; sending
// it is the facilitator's job.

// The parts of QuidBatchSettler's ABI that quid relies on.
var (
	SelectorBatchSettle = [4]byte(crypto.Keccak256([]byte(
		"settle(address,uint64,(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)[])")))
	BatchFailedTopic = crypto.Keccak256Hash([]byte("Failed(address,address,bytes32,bytes)"))
	// BatchNotAttempted is the reason of an item the settler skipped because the transaction's
	// remaining gas could not give its call perItemGas: the ABI encoding of NotAttempted().
	BatchNotAttempted = crypto.Keccak256([]byte("NotAttempted()"))[:4]
)

// MaxBatchReasonBytes is how much of a failed call's revert data the settler logs at most.
const MaxBatchReasonBytes = 256

// MaxTransactionGas is the most gas one transaction may have since Osaka (EIP-7825: 2^24).
// The devnet enforces it; BatchGasLimit and MaxBatchItems keep batches under it everywhere.
const MaxTransactionGas = 1 << 24

// Gas accounting mirrored from the settler: before item i it requires gasleft() to cover
// perItemGas + perItemGas/63 + ITEM_OVERHEAD_GAS + REPORT_GAS for each later item.
const (
	batchItemOverheadGas = 10_000 // ITEM_OVERHEAD_GAS
	// batchFixedGas covers settle's own work outside the items: dispatch, the token's cold
	// account access (2,600) and two memory buffers, about 5,000 gas as measured.
	batchFixedGas  = 50_000
	batchItemWords = 9 // from, to, value, validAfter, validBefore, nonce, v, r, s
	batchHeadBytes = 4 + 4*32
	batchItemBytes = batchItemWords * 32
)

// BatchItem is one authorization of a batch with its signature.
type BatchItem struct {
	Auth Authorization
	Sig  Signature
}

// BatchSettleCalldata encodes QuidBatchSettler.settle(token, perItemGas, items). Each item is
// the nine words of the token's transferWithAuthorization(from, to, value, validAfter,
// validBefore, nonce, v, r, s), in that order, so the settler forwards them unchanged.
func BatchSettleCalldata(token common.Address, perItemGas uint64, items []BatchItem) []byte {
	b := make([]byte, batchHeadBytes+len(items)*batchItemBytes)
	copy(b, SelectorBatchSettle[:])
	copy(word(b, 0)[12:], token[:])
	binary.BigEndian.PutUint64(word(b, 1)[24:], perItemGas)
	word(b, 2)[31] = 3 * 32 // where the array starts, counted from after the selector
	binary.BigEndian.PutUint64(word(b, 3)[24:], uint64(len(items)))
	for i := range items {
		it := &items[i]
		w := 4 + i*batchItemWords
		copy(word(b, w+0)[12:], it.Auth.From[:])
		copy(word(b, w+1)[12:], it.Auth.To[:])
		v := it.Auth.Value.Bytes32()
		copy(word(b, w+2), v[:])
		binary.BigEndian.PutUint64(word(b, w+3)[24:], it.Auth.ValidAfter)
		binary.BigEndian.PutUint64(word(b, w+4)[24:], it.Auth.ValidBefore)
		copy(word(b, w+5), it.Auth.Nonce[:])
		word(b, w+6)[31] = it.Sig.V()
		copy(word(b, w+7), it.Sig[0:32])
		copy(word(b, w+8), it.Sig[32:64])
	}
	return b
}

// BatchGasLimit returns a gas limit for a settle call of n items that is sure to let the
// settler attempt every item with perItemGas, however much of it each call uses. Only the gas
// used is paid; the rest of the limit is a reservation. It exceeds MaxTransactionGas beyond
// MaxBatchItems(perItemGas) items.
//
// Do not size the limit with eth_estimateGas: it searches for the smallest limit at which the
// transaction does not revert, and the settler does not revert when gas runs short; it reports
// the items that no longer fit as Failed(NotAttempted()). An estimate would skip the last items.
func BatchGasLimit(perItemGas uint64, n int) uint64 {
	calldata := uint64(batchHeadBytes + n*batchItemBytes)
	// 40 gas a byte bounds both the standard calldata price (4 or 16) and the EIP-7623 floor.
	return 21_000 + 40*calldata + batchFixedGas + uint64(n)*(perItemGas+perItemGas/63+batchItemOverheadGas)
}

// MaxBatchItems returns the most items whose BatchGasLimit fits in MaxTransactionGas.
func MaxBatchItems(perItemGas uint64) int {
	fixed := BatchGasLimit(perItemGas, 0)
	per := BatchGasLimit(perItemGas, 1) - fixed
	if fixed > MaxTransactionGas {
		return 0
	}
	return int((MaxTransactionGas - fixed) / per)
}

// BatchOutcome is what a settle transaction did with one of its items, as DecodeBatchResults
// reads it from the receipt. For a token that logs like USDC, an item is one of:
//
//   - Paid: the token used the authorization and logged the transfer it authorizes, in this
//     transaction. The payment is settled.
//   - NotAttempted: the settler skipped the item for want of gas. The transaction left the
//     authorization untouched, so it can go into another batch.
//   - failed with another Reason: the token call reverted, so the transaction changed nothing
//     for the item. Failing is not the same as unpaid: an item refused as "authorization is used
//     or canceled" may have been settled by another transaction first (anyone may submit an
//     EIP-3009 authorization). Resolve such an item as the reconciler resolves any settlement,
//     from authorizationState and the Transfer log. RevertMessage gives the token's message.
//
// A fourth case, Settled but not Paid, only arises with a token that logs otherwise: the call
// returned, but the receipt does not show the payment where the item's logs are. Treat it as
// an unknown settlement and reconcile it from chain state, never as paid or as untouched.
type BatchOutcome struct {
	// Settled reports an item the settler logged no Failed event for: its token call was made
	// and returned without reverting. That is not proof of payment; Paid is.
	Settled bool
	// Reason is the revert data of a failed item, at most MaxBatchReasonBytes of it, possibly
	// empty (an out-of-gas call has none), or BatchNotAttempted. It is nil when Settled.
	Reason []byte

	paid bool // set by DecodeBatchResults only
}

// Paid reports whether the receipt proves the item paid: at the item's place among the logs,
// the token logged AuthorizationUsed(from, nonce) of the item's authorization and, as its very
// next log, Transfer(from, to, value) with the authorization's from, to and value.
func (o BatchOutcome) Paid() bool {
	return o.paid
}

// NotAttempted reports an item that was skipped for want of gas: its authorization is
// untouched and can go into another batch.
func (o BatchOutcome) NotAttempted() bool {
	return !o.Settled && bytes.Equal(o.Reason, BatchNotAttempted)
}

var errorStringSelector = []byte{0x08, 0xc3, 0x79, 0xa0} // Error(string)

// RevertMessage returns the message of a failed item that reverted with Error(string), such as
// "FiatTokenV2: authorization is expired", or "" for any other reason.
func (o BatchOutcome) RevertMessage() string {
	if o.Settled || len(o.Reason) < 4 || !bytes.Equal(o.Reason[:4], errorStringSelector) {
		return ""
	}
	s, err := DecodeString(o.Reason[4:])
	if err != nil {
		return ""
	}
	return s
}

// ErrBatchReverted reports a settle transaction that reverted. It changed nothing: every
// authorization in it is as it was before, unused unless another transaction used it.
var ErrBatchReverted = errors.New("evm: batch settlement transaction reverted")

// ErrBatchLog reports a receipt whose logs are not those of a settle call of the given items
// with the given token: a log from the settler that is not its Failed event, a Failed event of
// another token, or logs left over once every item has been read. Nothing is then known about
// any item: reconcile each from chain state.
var ErrBatchLog = errors.New("evm: receipt logs do not match the batch")

// DecodeBatchResults reads the outcome of every item of a settle transaction from its receipt:
// outcomes[i] is that of items[i]. r must be the receipt of the transaction that sent
// BatchSettleCalldata(token, perItemGas, items) to the QuidBatchSettler at settler, with the
// same items in the same order. Settled is inferred from the absence of a Failed event, so it
// means something only in the receipt of that very transaction: when a relayer replaces
// transactions, look the receipt up by the hash of the one that carried these items, and read
// a replacement's receipt with the replacement's items.
//
// The rule. The logs are read in order, item after item, each log by at most one item (nil and
// removed logs are skipped):
//
//  1. If the next log is the settler's Failed(token, from, nonce, reason) with the item's from
//     and nonce, the item failed (not Settled) and that log is read.
//  2. Otherwise the item's call returned (Settled), and its logs are read: any logs up to the
//     next marker, a marker being a settler log or a log of the token's AuthorizationUsed
//     topic; then, if that marker is the token's AuthorizationUsed(from, nonce) with the item's
//     from and nonce, the marker and the logs after it up to the next marker. The item is Paid
//     if and only if the log right after that AuthorizationUsed is the token's
//     Transfer(from, to, value) with the item's from, to and value.
//  3. Logs left over once every item has been read are ErrBatchLog.
//
// Why it is sound. A call that reverts leaves no logs, and the settler logs nothing but one
// Failed event per failed item, emitted before the next item's turn; so a failed item's Failed
// event is the very next log after the previous item's logs, and an item whose next log is
// anything else did not fail. EIP-3009 tokens (USDC, EURC, QuidToken) log, for each
// authorization they honour, AuthorizationUsed(from, nonce) and then Transfer(from, to, value),
// and nothing else; with such a token each item's logs are exactly [Failed] or
// [AuthorizationUsed, Transfer], and the rule reads every outcome back exactly. A Transfer log
// proves only the authorization whose AuthorizationUsed directly precedes it, and each log is
// read once: two items with the same from, to and value (different nonces) cannot prove each
// other, and one Transfer never proves two items. A Transfer of the right amount logged
// elsewhere in the receipt proves nothing.
//
// Other tokens. A token that logs otherwise (no AuthorizationUsed, Transfer first, a fee's
// Transfer before the payee's, calls to contracts that log) yields items that are Settled but
// not Paid, or ErrBatchLog; no log of another address is ever taken as proof. A hostile token
// can log AuthorizationUsed and Transfer without moving anything, batched or not, just as it
// can in a lone settlement, and can re-enter the settler to have it log Failed events of its
// choosing: a receipt proves a payment only as far as its token is trusted, and facilitators
// settle only tokens they trust.
//
// How a caller maps each payment to an outcome:
//
//   - ErrBatchReverted: the transaction did nothing. No payment of the batch was settled by it;
//     each can be sent again (one used meanwhile by someone else then fails as used).
//   - ErrBatchLog, or any other error: unknown. Reconcile every payment of the batch from chain
//     state (authorizationState and the token's logs), as for a lone settlement whose receipt
//     cannot be read.
//   - Otherwise, payment i's outcome is outcomes[i], read as BatchOutcome says.
//   - One authorization in several items (which the facilitator should not send) is one
//     payment: paid if any of its items is Paid; failing that, to be reconciled if any is
//     Settled; untouched by this transaction if every one failed. An EIP-3009 token honours it
//     once and refuses the others as used.
//
// The receipt is as final as its block, as for a lone settlement.
func DecodeBatchResults(r *types.Receipt, settler, token common.Address, items []BatchItem) ([]BatchOutcome, error) {
	if r == nil {
		return nil, errors.New("evm: DecodeBatchResults: no receipt")
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return nil, ErrBatchReverted
	}
	type entry struct {
		l      *types.Log
		failed *batchFailed // the settler's Failed event, or nil for any other log
	}
	logs := make([]entry, 0, len(r.Logs))
	for _, l := range r.Logs {
		if l == nil || l.Removed {
			continue
		}
		e := entry{l: l}
		if l.Address == settler {
			f, err := decodeBatchFailed(l, token)
			if err != nil {
				return nil, fmt.Errorf("%w: log %d: %v", ErrBatchLog, l.Index, err)
			}
			e.failed = &f
		}
		logs = append(logs, e)
	}
	marker := func(e entry) bool {
		return e.failed != nil || e.l.Address == token && len(e.l.Topics) > 0 && e.l.Topics[0] == AuthorizationUsedTopic
	}
	out := make([]BatchOutcome, len(items))
	next := 0 // the next unread log
	for i := range items {
		a := &items[i].Auth
		if next < len(logs) {
			if f := logs[next].failed; f != nil && f.from == a.From && f.nonce == a.Nonce {
				out[i].Reason = f.reason
				next++
				continue
			}
		}
		out[i].Settled = true
		for next < len(logs) && !marker(logs[next]) {
			next++
		}
		if next < len(logs) && isAuthorizationUsed(logs[next].l, token, a) {
			next++
			if next < len(logs) && isTransferOf(logs[next].l, token, a) {
				out[i].paid = true
				next++
			}
			for next < len(logs) && !marker(logs[next]) {
				next++
			}
		}
	}
	if next < len(logs) {
		return nil, fmt.Errorf("%w: %d logs from log %d on belong to no item", ErrBatchLog, len(logs)-next, logs[next].l.Index)
	}
	return out, nil
}

// batchFailed is a decoded Failed event.
type batchFailed struct {
	from   common.Address
	nonce  [32]byte
	reason []byte
}

// decodeBatchFailed decodes a settler log, which must be a well-formed Failed event of token.
func decodeBatchFailed(l *types.Log, token common.Address) (batchFailed, error) {
	var f batchFailed
	if len(l.Topics) != 4 {
		return f, fmt.Errorf("%d topics, want 4", len(l.Topics))
	}
	if l.Topics[0] != BatchFailedTopic {
		return f, errors.New("not a Failed event")
	}
	if !isAddressWord(l.Topics[1]) || !isAddressWord(l.Topics[2]) {
		return f, errors.New("token or from topic is not an address")
	}
	if common.Address(l.Topics[1][12:]) != token {
		return f, fmt.Errorf("Failed event of token %s, want %s", common.Address(l.Topics[1][12:]), token)
	}
	reason, err := decodeBytes(l.Data)
	if err != nil {
		return f, fmt.Errorf("Failed reason: %v", err)
	}
	return batchFailed{from: common.Address(l.Topics[2][12:]), nonce: l.Topics[3], reason: reason}, nil
}

// isAuthorizationUsed reports whether l is token's AuthorizationUsed(a.From, a.Nonce).
func isAuthorizationUsed(l *types.Log, token common.Address, a *Authorization) bool {
	return l.Address == token && len(l.Topics) == 3 && l.Topics[0] == AuthorizationUsedTopic &&
		l.Topics[1] == common.BytesToHash(a.From[:]) && l.Topics[2] == common.Hash(a.Nonce) && len(l.Data) == 0
}

// isTransferOf reports whether l is token's Transfer(a.From, a.To, a.Value).
func isTransferOf(l *types.Log, token common.Address, a *Authorization) bool {
	v := a.Value.Bytes32()
	return l.Address == token && len(l.Topics) == 3 && l.Topics[0] == TransferTopic &&
		l.Topics[1] == common.BytesToHash(a.From[:]) && l.Topics[2] == common.BytesToHash(a.To[:]) &&
		bytes.Equal(l.Data, v[:])
}

// decodeBytes decodes the ABI encoding of a lone bytes value, accepting only the canonical
// form: offset 32, the length, the bytes, zero padding to a whole word.
func decodeBytes(data []byte) ([]byte, error) {
	if len(data) < 64 || len(data)%32 != 0 {
		return nil, errors.New("not an ABI-encoded bytes")
	}
	var off, n Amount
	off.v.SetBytes32(data[:32])
	n.v.SetBytes32(data[32:64])
	if !off.v.IsUint64() || off.v.Uint64() != 32 {
		return nil, errors.New("bytes offset is not 32")
	}
	if !n.v.IsUint64() || n.v.Uint64() > uint64(len(data)-64) || (n.v.Uint64()+31)/32*32 != uint64(len(data)-64) {
		return nil, errors.New("bytes length does not match the data")
	}
	b, pad := data[64:64+n.v.Uint64()], data[64+n.v.Uint64():]
	for _, c := range pad {
		if c != 0 {
			return nil, errors.New("bytes padding is not zero")
		}
	}
	return bytes.Clone(b), nil
}

func isAddressWord(h common.Hash) bool {
	return [12]byte(h[:12]) == [12]byte{}
}
