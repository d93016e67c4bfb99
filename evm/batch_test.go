package evm_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/evm/contracts/batch"
	"github.com/quidpay/quid/evm/contracts/token"
)

// Tests of batch settlement against QuidBatchSettler and QuidToken on the real devnet, and of
// the calldata encoder and event decoder against go-ethereum's abi package and the bindings.

var (
	batchToken   = token.NewQuidToken()
	batchSettler = batch.NewQuidBatchSettler()
)

// testPerItemGas is what the tests give each token call. QuidToken's transferWithAuthorization
// needs 41,500 gas, or 58,600 when the payee holds no tokens yet (measured on the devnet).
const testPerItemGas = 100_000

// settleABI is the settler's ABI as quid relies on it, written out independently of the
// hand-rolled encoder and of the generated bindings.
const settleABI = `[
 {"type":"function","name":"settle","stateMutability":"nonpayable","inputs":[
  {"name":"token","type":"address"},{"name":"perItemGas","type":"uint64"},
  {"name":"items","type":"tuple[]","components":[
   {"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},
   {"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"},
   {"name":"v","type":"uint8"},{"name":"r","type":"bytes32"},{"name":"s","type":"bytes32"}]}],"outputs":[]},
 {"type":"event","name":"Failed","anonymous":false,"inputs":[
  {"name":"token","type":"address","indexed":true},{"name":"from","type":"address","indexed":true},
  {"name":"nonce","type":"bytes32","indexed":true},{"name":"reason","type":"bytes","indexed":false}]},
 {"type":"error","name":"NotAttempted","inputs":[]}
]`

// abiItem is an item as go-ethereum's abi package packs the settle tuple.
type abiItem struct {
	From        common.Address
	To          common.Address
	Value       *big.Int
	ValidAfter  *big.Int
	ValidBefore *big.Int
	Nonce       [32]byte
	V           uint8
	R           [32]byte
	S           [32]byte
}

// randomItems returns n items with random fields, every value and time at full width.
func randomItems(t testing.TB, n int) []evm.BatchItem {
	t.Helper()
	items := make([]evm.BatchItem, n)
	for i := range items {
		var raw [20 + 20 + 32 + 8 + 8 + 32 + 65]byte
		r, err := evm.NewNonce()
		if err != nil {
			t.Fatal(err)
		}
		// Stretch 32 random bytes over the whole item with Keccak: enough for distinct fields.
		for off := 0; off < len(raw); off += 32 {
			copy(raw[off:], crypto.Keccak256(r[:], []byte{byte(off)}))
		}
		it := &items[i]
		it.Auth.From = common.Address(raw[0:20])
		it.Auth.To = common.Address(raw[20:40])
		v, _ := evm.AmountFromBig(new(big.Int).SetBytes(raw[40:72]))
		it.Auth.Value = v
		it.Auth.ValidAfter = binary.BigEndian.Uint64(raw[72:80])
		it.Auth.ValidBefore = binary.BigEndian.Uint64(raw[80:88])
		it.Auth.Nonce = [32]byte(raw[88:120])
		copy(it.Sig[:], raw[120:])
		it.Sig[64] = 27 + raw[120]&1
	}
	return items
}

func TestBatchSettleCalldataMatchesABI(t *testing.T) {
	t.Parallel()
	parsed, err := abi.JSON(strings.NewReader(settleABI))
	if err != nil {
		t.Fatal(err)
	}
	tokenAddr := common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
	for _, n := range []int{0, 1, 2, 7, 100} {
		for _, perItemGas := range []uint64{0, testPerItemGas, 1<<64 - 1} {
			items := randomItems(t, n)
			var want []abiItem
			var bound []batch.QuidBatchSettlerAuthorization
			for _, it := range items {
				a := abiItem{From: it.Auth.From, To: it.Auth.To, Value: it.Auth.Value.Big(),
					ValidAfter:  new(big.Int).SetUint64(it.Auth.ValidAfter),
					ValidBefore: new(big.Int).SetUint64(it.Auth.ValidBefore),
					Nonce:       it.Auth.Nonce, V: it.Sig.V(), R: it.Sig.R(), S: it.Sig.S()}
				want = append(want, a)
				bound = append(bound, batch.QuidBatchSettlerAuthorization(a))
			}
			got := evm.BatchSettleCalldata(tokenAddr, perItemGas, items)
			packed, err := parsed.Pack("settle", tokenAddr, perItemGas, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, packed) {
				t.Fatalf("n=%d perItemGas=%d: calldata differs from abi.Pack\n got %x\nwant %x", n, perItemGas, got, packed)
			}
			if b := batchSettler.PackSettle(tokenAddr, perItemGas, bound); !bytes.Equal(got, b) {
				t.Fatalf("n=%d: calldata differs from the bindings' PackSettle", n)
			}
			// Each item's nine words are exactly transferWithAuthorization's arguments.
			for i, it := range items {
				call := evm.TransferWithAuthorizationCalldata(&it.Auth, it.Sig)
				start := 4 + 4*32 + i*9*32
				if !bytes.Equal(got[start:start+9*32], call[4:]) {
					t.Fatalf("item %d is not the token call's arguments", i)
				}
			}
		}
	}
}

// TestBatchABI pins the selector, topics and error quid hard-codes to the independent ABI and to
// the compiled contract's ABI in the bindings.
func TestBatchABI(t *testing.T) {
	t.Parallel()
	parsed, err := abi.JSON(strings.NewReader(settleABI))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []abi.ABI{parsed, batchSettler.GetABI()} {
		if got := a.Methods["settle"].ID; !bytes.Equal(got, evm.SelectorBatchSettle[:]) {
			t.Errorf("settle selector = %x, evm has %x", got, evm.SelectorBatchSettle)
		}
		if got := a.Events["Failed"].ID; got != evm.BatchFailedTopic {
			t.Errorf("Failed topic = %s", got)
		}
		if got := a.Errors["NotAttempted"].ID; !bytes.Equal(got[:4], evm.BatchNotAttempted) {
			t.Errorf("NotAttempted selector = %x", got[:4])
		}
	}
	// Failed is the settler's only event: DecodeBatchResults relies on it logging nothing else.
	if len(batchSettler.GetABI().Methods) != 4 || len(batchSettler.GetABI().Events) != 1 {
		t.Errorf("the settler's ABI changed: %d methods, %d events; update evm/batch.go and this test",
			len(batchSettler.GetABI().Methods), len(batchSettler.GetABI().Events))
	}
}

func TestBatchGasLimit(t *testing.T) {
	t.Parallel()
	for _, perItemGas := range []uint64{50_000, testPerItemGas, 200_000, 1_000_000, 20_000_000} {
		n := evm.MaxBatchItems(perItemGas)
		if n > 0 && evm.BatchGasLimit(perItemGas, n) > evm.MaxTransactionGas {
			t.Errorf("perItemGas %d: %d items need %d gas, over the cap", perItemGas, n, evm.BatchGasLimit(perItemGas, n))
		}
		if evm.BatchGasLimit(perItemGas, n+1) <= evm.MaxTransactionGas {
			t.Errorf("perItemGas %d: MaxBatchItems = %d, but %d fit", perItemGas, n, n+1)
		}
	}
	if n := evm.MaxBatchItems(testPerItemGas); n < 100 {
		t.Errorf("MaxBatchItems(%d) = %d, want at least 100", testPerItemGas, n)
	}
}

// ---------------------------------------------------------------- the decoder, without a chain

var (
	decSettler = common.HexToAddress("0x00000000000000000000000000000000000b47c4")
	decToken   = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	decOther   = common.HexToAddress("0x0000000000000000000000000000000000000001") // another token
	decPayers  = [2]common.Address{common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"), common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")}
	decPayees  = [2]common.Address{common.HexToAddress("0x90F79bf6EB2c4f870365E785982E1f101E93b906"), common.HexToAddress("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65")}
)

func addrTopic(a common.Address) common.Hash { return common.BytesToHash(a[:]) }

// decItem is an item of payer p to payee q of value v with nonce {n}; the signature is not read.
func decItem(p, q int, v uint64, n byte) evm.BatchItem {
	return evm.BatchItem{Auth: evm.Authorization{From: decPayers[p], To: decPayees[q], Value: evm.NewAmount(v), Nonce: [32]byte{n}}}
}

func failedLogOf(tokenAddr common.Address, it evm.BatchItem, reason []byte) *types.Log {
	return &types.Log{Address: decSettler, Topics: []common.Hash{evm.BatchFailedTopic, addrTopic(tokenAddr), addrTopic(it.Auth.From), it.Auth.Nonce},
		Data: abiBytes(reason)}
}

func failedLog(it evm.BatchItem, reason []byte) *types.Log { return failedLogOf(decToken, it, reason) }

func authUsedLog(tokenAddr common.Address, it evm.BatchItem) *types.Log {
	return &types.Log{Address: tokenAddr, Topics: []common.Hash{evm.AuthorizationUsedTopic, addrTopic(it.Auth.From), it.Auth.Nonce}}
}

func transferLog(tokenAddr, from, to common.Address, value evm.Amount) *types.Log {
	v := value.Bytes32()
	return &types.Log{Address: tokenAddr, Topics: []common.Hash{evm.TransferTopic, addrTopic(from), addrTopic(to)}, Data: v[:]}
}

// transferOf is tokenAddr's Transfer log of exactly what it authorizes.
func transferOf(tokenAddr common.Address, it evm.BatchItem) *types.Log {
	return transferLog(tokenAddr, it.Auth.From, it.Auth.To, it.Auth.Value)
}

// paidLogs are what an EIP-3009 token logs when it honours it.
func paidLogs(it evm.BatchItem) []*types.Log {
	return []*types.Log{authUsedLog(decToken, it), transferOf(decToken, it)}
}

// otherLog is a log that is neither the settler's nor a token event quid reads.
func otherLog(addr common.Address) *types.Log {
	return &types.Log{Address: addr, Topics: []common.Hash{{0xee}}, Data: []byte{1}}
}

// receiptOf is a successful receipt with logs, indexed in order.
func receiptOf(logs ...*types.Log) *types.Receipt {
	for i, l := range logs {
		if l != nil {
			l.Index = uint(i)
		}
	}
	return &types.Receipt{Status: types.ReceiptStatusSuccessful, Logs: logs}
}

func cat(parts ...[]*types.Log) []*types.Log {
	var out []*types.Log
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// abiBytes is the ABI encoding of one bytes value.
func abiBytes(b []byte) []byte {
	out := make([]byte, 64+(len(b)+31)/32*32)
	out[31] = 32
	binary.BigEndian.PutUint64(out[56:64], uint64(len(b)))
	copy(out[64:], b)
	return out
}

func errorString(msg string) []byte {
	enc, err := abi.Arguments{{Type: mustType("string")}}.Pack(msg)
	if err != nil {
		panic(err)
	}
	return append([]byte{0x08, 0xc3, 0x79, 0xa0}, enc...)
}

func mustType(s string) abi.Type {
	typ, err := abi.NewType(s, "", nil)
	if err != nil {
		panic(err)
	}
	return typ
}

// decWant is an expected outcome: "paid", "settled" (returned, not proven paid), "not
// attempted", or "failed:" and the reason's hex.
type decWant string

func failedWant(reason []byte) decWant { return decWant(fmt.Sprintf("failed:%x", reason)) }

func describe(o evm.BatchOutcome) decWant {
	switch {
	case o.Paid() && o.Settled && o.Reason == nil:
		return "paid"
	case o.Paid():
		return decWant(fmt.Sprintf("inconsistent %+v", o))
	case o.Settled && o.Reason == nil:
		return "settled"
	case o.Settled || o.Reason == nil:
		return decWant(fmt.Sprintf("inconsistent %+v", o))
	case o.NotAttempted():
		return "not attempted"
	}
	return failedWant(o.Reason)
}

func TestDecodeBatchResults(t *testing.T) {
	t.Parallel()
	used := errorString("FiatTokenV2: authorization is used or canceled")
	a, b, c := decItem(0, 0, 10, 1), decItem(1, 0, 20, 2), decItem(0, 1, 30, 3)
	// Two payments with the same payer, payee and value: only the nonces tell them apart.
	twin1, twin2 := decItem(0, 0, 10, 4), decItem(0, 0, 10, 5)
	na := evm.BatchNotAttempted
	tests := []struct {
		name  string
		items []evm.BatchItem
		logs  []*types.Log
		want  []decWant
	}{
		{"empty", nil, nil, nil},
		{"all paid", []evm.BatchItem{a, b, c}, cat(paidLogs(a), paidLogs(b), paidLogs(c)), []decWant{"paid", "paid", "paid"}},
		{"mixed",
			[]evm.BatchItem{a, b, c, twin1, twin2},
			cat(paidLogs(a), []*types.Log{failedLog(b, used)}, paidLogs(c), []*types.Log{failedLog(twin1, []byte{}), failedLog(twin2, na)}),
			[]decWant{"paid", failedWant(used), "paid", failedWant([]byte{}), "not attempted"}},
		{"twins both paid", []evm.BatchItem{twin1, twin2}, cat(paidLogs(twin1), paidLogs(twin2)), []decWant{"paid", "paid"}},
		{"first twin failed", []evm.BatchItem{twin1, twin2}, cat([]*types.Log{failedLog(twin1, used)}, paidLogs(twin2)),
			[]decWant{failedWant(used), "paid"}},
		{"second twin failed", []evm.BatchItem{twin1, twin2}, cat(paidLogs(twin1), []*types.Log{failedLog(twin2, used)}),
			[]decWant{"paid", failedWant(used)}},
		// One Transfer never proves two twins, whichever AuthorizationUsed it follows.
		{"one transfer for two twins", []evm.BatchItem{twin1, twin2},
			[]*types.Log{authUsedLog(decToken, twin1), transferOf(decToken, twin1), authUsedLog(decToken, twin2)},
			[]decWant{"paid", "settled"}},
		{"one transfer after both twins", []evm.BatchItem{twin1, twin2},
			[]*types.Log{authUsedLog(decToken, twin1), authUsedLog(decToken, twin2), transferOf(decToken, twin2)},
			[]decWant{"settled", "paid"}},
		{"the same authorization twice", []evm.BatchItem{a, a}, cat(paidLogs(a), []*types.Log{failedLog(a, used)}),
			[]decWant{"paid", failedWant(used)}},
		{"the same authorization, first not attempted", []evm.BatchItem{a, a}, cat([]*types.Log{failedLog(a, na)}, paidLogs(a)),
			[]decWant{"not attempted", "paid"}},
		{"extra logs after the transfer", []evm.BatchItem{a, b},
			cat(paidLogs(a), []*types.Log{otherLog(decToken), otherLog(decOther), authUsedLog(decOther, a)}, paidLogs(b)),
			[]decWant{"paid", "paid"}},
		{"removed and nil logs", []evm.BatchItem{a, b},
			cat([]*types.Log{nil}, paidLogs(a), []*types.Log{{Address: decSettler, Removed: true}, failedLog(b, used)}),
			[]decWant{"paid", failedWant(used)}},
		// Tokens that do not log like USDC: the call returned, the payment is not proven.
		{"no logs", []evm.BatchItem{a, b}, nil, []decWant{"settled", "settled"}},
		{"silent, then a failure", []evm.BatchItem{a, b}, []*types.Log{failedLog(b, used)}, []decWant{"settled", failedWant(used)}},
		{"transfer without AuthorizationUsed", []evm.BatchItem{a, b}, cat([]*types.Log{transferOf(decToken, a)}, paidLogs(b)),
			[]decWant{"settled", "paid"}},
		{"transfer before AuthorizationUsed", []evm.BatchItem{a}, []*types.Log{transferOf(decToken, a), authUsedLog(decToken, a)},
			[]decWant{"settled"}},
		{"logs before AuthorizationUsed", []evm.BatchItem{a}, cat([]*types.Log{otherLog(decToken)}, paidLogs(a)), []decWant{"paid"}},
		{"wrong value", []evm.BatchItem{a}, []*types.Log{authUsedLog(decToken, a), transferLog(decToken, a.Auth.From, a.Auth.To, evm.NewAmount(9))},
			[]decWant{"settled"}},
		{"wrong payee", []evm.BatchItem{a}, []*types.Log{authUsedLog(decToken, a), transferLog(decToken, a.Auth.From, decPayees[1], a.Auth.Value)},
			[]decWant{"settled"}},
		{"a fee's transfer first", []evm.BatchItem{a},
			[]*types.Log{authUsedLog(decToken, a), transferLog(decToken, a.Auth.From, decOther, evm.NewAmount(1)), transferOf(decToken, a)},
			[]decWant{"settled"}},
		{"transfer of another token", []evm.BatchItem{a}, []*types.Log{authUsedLog(decToken, a), transferOf(decOther, a)},
			[]decWant{"settled"}},
		{"AuthorizationUsed of another token", []evm.BatchItem{a}, []*types.Log{authUsedLog(decOther, a), transferOf(decToken, a)},
			[]decWant{"settled"}},
		// A Failed event only counts where the item's logs start: after logs of the item's own
		// call, the call returned, so the event is a later item's.
		{"failure after the item's logs", []evm.BatchItem{a, a}, []*types.Log{otherLog(decToken), failedLog(a, used)},
			[]decWant{"settled", failedWant(used)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := evm.DecodeBatchResults(receiptOf(tt.logs...), decSettler, decToken, tt.items)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.items) {
				t.Fatalf("%d outcomes for %d items", len(got), len(tt.items))
			}
			for i, o := range got {
				if d := describe(o); d != tt.want[i] {
					t.Errorf("item %d: %s, want %s", i, d, tt.want[i])
				}
			}
		})
	}

	o := evm.BatchOutcome{Reason: used}
	if o.RevertMessage() != "FiatTokenV2: authorization is used or canceled" || o.NotAttempted() || o.Paid() {
		t.Errorf("used: %+v, message %q", o, o.RevertMessage())
	}
	if o := (evm.BatchOutcome{Reason: na}); !o.NotAttempted() || o.RevertMessage() != "" {
		t.Errorf("not attempted: %+v", o)
	}
	if o := (evm.BatchOutcome{Settled: true}); o.Paid() || o.NotAttempted() || o.RevertMessage() != "" {
		t.Errorf("settled: %+v", o)
	}
}

// TestDecodeBatchResultsRefuses covers receipts the decoder must not read: a reverted
// transaction, logs of another batch or order, and settler logs that are not its Failed event.
func TestDecodeBatchResultsRefuses(t *testing.T) {
	t.Parallel()
	a, b := decItem(0, 0, 10, 1), decItem(1, 1, 20, 2)
	used := errorString("FiatTokenV2: authorization is used or canceled")

	reverted := receiptOf(paidLogs(a)...)
	reverted.Status = types.ReceiptStatusFailed
	if got, err := evm.DecodeBatchResults(reverted, decSettler, decToken, []evm.BatchItem{a}); !errors.Is(err, evm.ErrBatchReverted) || got != nil {
		t.Errorf("reverted receipt: %v, %v", got, err)
	}
	if got, err := evm.DecodeBatchResults(&types.Receipt{Status: types.ReceiptStatusFailed}, decSettler, decToken, nil); !errors.Is(err, evm.ErrBatchReverted) || got != nil {
		t.Errorf("reverted empty batch: %v, %v", got, err)
	}
	if _, err := evm.DecodeBatchResults(nil, decSettler, decToken, []evm.BatchItem{a}); err == nil {
		t.Error("nil receipt accepted")
	}

	tests := []struct {
		name  string
		items []evm.BatchItem
		logs  []*types.Log
	}{
		{"items in the wrong order", []evm.BatchItem{a, b}, cat(paidLogs(b), paidLogs(a))},
		{"an item missing", []evm.BatchItem{a}, cat(paidLogs(a), paidLogs(b))},
		{"no items", nil, paidLogs(a)},
		{"a failure of an item not in the batch", []evm.BatchItem{a}, []*types.Log{failedLog(b, used)}},
		{"a failure after logs of a returned call", []evm.BatchItem{a, b}, []*types.Log{failedLog(a, used), otherLog(decToken), failedLog(b, used)}},
		{"a failure of another token", []evm.BatchItem{a}, []*types.Log{failedLogOf(decOther, a, used)}},
		// A malformed AuthorizationUsed still marks where a call's logs start, and fits no item.
		{"AuthorizationUsed with data", []evm.BatchItem{a},
			[]*types.Log{{Address: decToken, Topics: authUsedLog(decToken, a).Topics, Data: []byte{0}}, transferOf(decToken, a)}},
		// A token re-entering the settler mixes another batch's events into this one's.
		{"re-entered settler", []evm.BatchItem{a, b}, cat(paidLogs(a)[:1], []*types.Log{failedLog(b, used)}, paidLogs(a)[1:], paidLogs(b))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := evm.DecodeBatchResults(receiptOf(tt.logs...), decSettler, decToken, tt.items); !errors.Is(err, evm.ErrBatchLog) || got != nil {
				t.Errorf("got %v, %v; want ErrBatchLog", got, err)
			}
		})
	}

	good := failedLog(a, []byte("abc"))
	mutate := func(f func(l *types.Log)) *types.Log {
		l := *good
		l.Topics = append([]common.Hash(nil), good.Topics...)
		l.Data = bytes.Clone(good.Data)
		f(&l)
		return &l
	}
	malformed := []struct {
		name string
		log  *types.Log
	}{
		{"no topics", mutate(func(l *types.Log) { l.Topics = nil })},
		{"three topics", mutate(func(l *types.Log) { l.Topics = l.Topics[:3] })},
		{"unknown event", mutate(func(l *types.Log) { l.Topics[0] = evm.TransferTopic })},
		{"the removed Settled event", mutate(func(l *types.Log) {
			l.Topics[0] = crypto.Keccak256Hash([]byte("Settled(address,address,bytes32)"))
			l.Data = nil
		})},
		{"token topic not an address", mutate(func(l *types.Log) { l.Topics[1][0] = 1 })},
		{"from topic not an address", mutate(func(l *types.Log) { l.Topics[2][11] = 1 })},
		{"Failed without data", mutate(func(l *types.Log) { l.Data = nil })},
		{"reason offset", mutate(func(l *types.Log) { l.Data[31] = 64 })},
		{"reason length too long", mutate(func(l *types.Log) { l.Data[63] = 33 })},
		{"reason length too short", mutate(func(l *types.Log) { l.Data = append(l.Data, make([]byte, 32)...) })},
		{"reason length huge", mutate(func(l *types.Log) { l.Data[32] = 1 })},
		{"reason padding", mutate(func(l *types.Log) { l.Data[95] = 1 })},
		{"reason truncated", mutate(func(l *types.Log) { l.Data = l.Data[:80] })},
	}
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Even where it would be left over anyway, a malformed settler log is refused as such.
			_, err := evm.DecodeBatchResults(receiptOf(cat(paidLogs(b), []*types.Log{tt.log})...), decSettler, decToken, []evm.BatchItem{b, a})
			if !errors.Is(err, evm.ErrBatchLog) {
				t.Errorf("err = %v, want ErrBatchLog", err)
			}
			// The same log from an address other than the settler's is one of an item's logs.
			other := *tt.log
			other.Address = decOther
			got, err := evm.DecodeBatchResults(receiptOf(cat(paidLogs(b), []*types.Log{&other})...), decSettler, decToken, []evm.BatchItem{b})
			if err != nil || !got[0].Paid() {
				t.Errorf("log from another address: %v, %v", got, err)
			}
		})
	}
}

// fuzzItem maps a byte to one of 24 items over two payers, two payees, two values and three
// nonces, so that fuzzed batches hold repeated authorizations and twins (the same payer, payee
// and value with different nonces), and fuzzed logs often match items.
func fuzzItem(b byte) evm.BatchItem {
	return decItem(int(b&1), int(b>>1&1), 1+uint64(b>>2&1), 1+(b>>3)%3)
}

var fuzzReasons = [][]byte{{}, evm.BatchNotAttempted, errorString("FiatTokenV2: authorization is used or canceled"), bytes.Repeat([]byte{7}, 100)}

// FuzzDecodeBatchResults decodes, for items drawn from the input, two receipts drawn from it:
//
//   - a run of logs from a small vocabulary (the settler's Failed events, the token's
//     AuthorizationUsed and Transfer logs matching or nearly matching items, logs of another
//     token, malformed and nil logs). The decoder must not panic, fails only with ErrBatchLog,
//     and what it accepts must account for the settler's events one to one, in order, and prove
//     each Paid item by its own AuthorizationUsed directly followed by its Transfer, no two items
//     by the same logs;
//   - the receipt of an EIP-3009 token that honours each authorization once, refusing repeats as
//     used, fails some items and skips others: the decoder must read back exactly what happened.
func FuzzDecodeBatchResults(f *testing.F) {
	f.Add([]byte{3, 0, 9, 17, 1, 0, 5, 0, 9, 0, 5, 9, 9, 9})
	f.Add([]byte{2, 4, 4, 5, 4, 9, 4, 5, 4, 0, 4})
	f.Add([]byte{4, 1, 2, 3, 4, 0, 1, 2, 3})
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x01, 0xf0, 0x0f})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 {
			return
		}
		items := make([]evm.BatchItem, int(raw[0])%7)
		raw = raw[1:]
		for i := range items {
			if len(raw) > 0 {
				items[i] = fuzzItem(raw[0])
				raw = raw[1:]
			} else {
				items[i] = fuzzItem(byte(i))
			}
		}
		fuzzArbitrary(t, items, raw)
		fuzzHonest(t, items, raw)
	})
}

func fuzzArbitrary(t *testing.T, items []evm.BatchItem, raw []byte) {
	var logs []*types.Log
	for ; len(raw) >= 2; raw = raw[2:] {
		op, p := raw[0], raw[1]
		it := fuzzItem(p)
		var l *types.Log
		switch op % 16 {
		case 0, 1, 2, 3:
			l = failedLog(it, fuzzReasons[p>>5%4])
		case 4, 5, 6, 7:
			l = authUsedLog(decToken, it)
		case 8, 9, 10:
			l = transferOf(decToken, it)
		case 11:
			l = transferLog(decToken, it.Auth.From, decPayees[p>>5&1], evm.NewAmount(uint64(p>>6)))
		case 12:
			l = transferOf(decOther, it)
		case 13:
			l = authUsedLog(decOther, it)
		case 14:
			switch p >> 5 % 3 {
			case 0:
				l = otherLog(decToken)
			case 1:
				l = &types.Log{Address: decToken, Topics: authUsedLog(decToken, it).Topics[:2]} // malformed AuthorizationUsed
			}
		case 15:
			switch p >> 5 % 4 {
			case 0:
				l = failedLogOf(decOther, it, nil)
			case 1:
				l = failedLog(it, nil)
				l.Data = l.Data[:32]
			case 2:
				l = failedLog(it, nil)
				l.Removed = true
			case 3:
				l = &types.Log{Address: decSettler}
			}
		}
		logs = append(logs, l)
	}
	got, err := evm.DecodeBatchResults(receiptOf(logs...), decSettler, decToken, items)
	if err != nil {
		if !errors.Is(err, evm.ErrBatchLog) || got != nil {
			t.Fatalf("err = %v with %d outcomes", err, len(got))
		}
		return
	}
	if len(got) != len(items) {
		t.Fatalf("%d outcomes for %d items", len(got), len(items))
	}
	var live []*types.Log
	for _, l := range logs {
		if l != nil && !l.Removed {
			live = append(live, l)
		}
	}
	// The settler's events are the failed items, in order.
	var events []*types.Log
	for _, l := range live {
		if l.Address == decSettler {
			events = append(events, l)
		}
	}
	failed, proof := 0, 0 // the next settler event and the first log a proof may use
	for i, o := range got {
		it := items[i]
		switch {
		case o.Paid() && (!o.Settled || o.Reason != nil), o.Settled != (o.Reason == nil):
			t.Fatalf("item %d: inconsistent %+v", i, o)
		case !o.Settled:
			if failed == len(events) {
				t.Fatalf("item %d failed with no settler event left", i)
			}
			e := events[failed]
			failed++
			if e.Topics[2] != addrTopic(it.Auth.From) || e.Topics[3] != it.Auth.Nonce || !bytes.Equal(abiBytes(o.Reason), e.Data) {
				t.Fatalf("item %d: %+v is not settler event %d", i, o, failed-1)
			}
		case o.Paid():
			for ; proof+1 < len(live); proof++ {
				if sameLog(live[proof], authUsedLog(decToken, it)) && sameLog(live[proof+1], transferOf(decToken, it)) {
					break
				}
			}
			if proof+1 >= len(live) {
				t.Fatalf("item %d paid without its AuthorizationUsed and Transfer after the previous proof", i)
			}
			proof += 2
		}
	}
	if failed != len(events) {
		t.Fatalf("%d settler events, %d failed items", len(events), failed)
	}
}

// sameLog compares what a log says: its address, topics and data.
func sameLog(a, b *types.Log) bool {
	return a.Address == b.Address && slices.Equal(a.Topics, b.Topics) && bytes.Equal(a.Data, b.Data)
}

func fuzzHonest(t *testing.T, items []evm.BatchItem, raw []byte) {
	type key struct {
		from  common.Address
		nonce [32]byte
	}
	used := map[key]bool{}
	var logs []*types.Log
	want := make([]decWant, len(items))
	for i, it := range items {
		b := byte(2)
		if i < len(raw) {
			b = raw[i]
		}
		k := key{it.Auth.From, it.Auth.Nonce}
		switch {
		case b%4 == 0:
			r := fuzzReasons[b>>2%4]
			logs = append(logs, failedLog(it, r))
			want[i] = failedWant(r)
			if bytes.Equal(r, evm.BatchNotAttempted) {
				want[i] = "not attempted"
			}
		case b%4 == 1:
			logs = append(logs, failedLog(it, evm.BatchNotAttempted))
			want[i] = "not attempted"
		case used[k]:
			r := fuzzReasons[2]
			logs = append(logs, failedLog(it, r))
			want[i] = failedWant(r)
		default:
			used[k] = true
			logs = append(logs, paidLogs(it)...)
			if b%4 == 3 { // the payee's or an observer's contract logs too
				logs = append(logs, otherLog(decOther))
			}
			want[i] = "paid"
		}
	}
	got, err := evm.DecodeBatchResults(receiptOf(logs...), decSettler, decToken, items)
	if err != nil {
		t.Fatalf("honest receipt refused: %v", err)
	}
	for i, o := range got {
		if d := describe(o); d != want[i] {
			t.Fatalf("honest receipt, item %d: %s, want %s", i, d, want[i])
		}
	}
}

// ---------------------------------------------------------------- the devnet

// batchChain is a devnet with QuidBatchSettler deployed by the relayer, the account that sends
// every settlement transaction, as a facilitator's relayer would.
type batchChain struct {
	t       testing.TB
	d       *devnet.Devnet
	domain  evm.Domain
	token   common.Address
	minter  devnet.Account // account 0: deployed the token, its only minter
	relayer devnet.Account
	settler common.Address
	nonces  map[common.Address]uint64 // each chain is used by one goroutine
}

func newBatchChain(t testing.TB) *batchChain {
	t.Helper()
	// Blocks are not held back for the wall clock: the tests send many transactions one after
	// another. Block time may then run ahead of real time, so authorizations last a day.
	d, err := devnet.Start(devnet.Config{MaxTimestampLead: -1})
	if err != nil {
		t.Fatalf("devnet: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	acc := d.Accounts()
	c := &batchChain{t: t, d: d, domain: evm.DevToken(d.ChainID()).Domain(), token: d.Token(),
		minter: acc[0], relayer: acc[3], nonces: map[common.Address]uint64{}}
	if c.token != evm.DevTokenAddress {
		t.Fatalf("devnet token at %s, evm expects %s", c.token, evm.DevTokenAddress)
	}
	r := c.sendTx(c.relayer, nil, common.FromHex(batch.QuidBatchSettlerMetaData.Bin), 1_000_000)
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("deploying QuidBatchSettler reverted")
	}
	c.settler = r.ContractAddress
	return c
}

func (c *batchChain) nextNonce(a devnet.Account) uint64 {
	c.t.Helper()
	n, ok := c.nonces[a.Address]
	if !ok {
		var err error
		if n, err = c.d.Client().PendingNonceAt(context.Background(), a.Address); err != nil {
			c.t.Fatal(err)
		}
	}
	c.nonces[a.Address] = n + 1
	return n
}

func (c *batchChain) signTx(from devnet.Account, to *common.Address, data []byte, gas uint64) *types.Transaction {
	c.t.Helper()
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(c.d.ChainID()))
	tx, err := types.SignNewTx(from.Key, signer, &types.DynamicFeeTx{
		ChainID:   signer.ChainID(),
		Nonce:     c.nextNonce(from),
		GasTipCap: big.NewInt(1_000_000_000),
		GasFeeCap: big.NewInt(50_000_000_000),
		Gas:       gas,
		To:        to,
		Data:      data,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return tx
}

// sendTx sends a transaction and returns its receipt.
func (c *batchChain) sendTx(from devnet.Account, to *common.Address, data []byte, gas uint64) *types.Receipt {
	c.t.Helper()
	tx := c.signTx(from, to, data, gas)
	if err := c.d.Client().SendTransaction(context.Background(), tx); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	return c.receipt(tx.Hash())
}

// receipt waits for a transaction's receipt. The devnet mines a sent transaction within
// milliseconds, so half a minute means it never will.
func (c *batchChain) receipt(h common.Hash) *types.Receipt {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		r, err := c.d.Client().TransactionReceipt(ctx, h)
		if err == nil {
			return r
		}
		if !errors.Is(err, ethereum.NotFound) {
			c.t.Fatalf("receipt of %s: %v", h, err)
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("transaction %s was not mined", h)
		case <-time.After(delay):
		}
	}
}

// mint mints value to every address, all in one JSON-RPC batch.
func (c *batchChain) mint(value uint64, to ...common.Address) {
	c.t.Helper()
	var reqs []rpc.BatchElem
	var hashes []common.Hash
	for _, a := range to {
		tx := c.signTx(c.minter, &c.token, batchToken.PackMint(a, new(big.Int).SetUint64(value)), 100_000)
		raw, err := tx.MarshalBinary()
		if err != nil {
			c.t.Fatal(err)
		}
		reqs = append(reqs, rpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Encode(raw)}, Result: new(common.Hash)})
		hashes = append(hashes, tx.Hash())
	}
	if err := c.d.RPC().BatchCallContext(context.Background(), reqs); err != nil {
		c.t.Fatal(err)
	}
	for _, r := range reqs {
		if r.Error != nil {
			c.t.Fatal(r.Error)
		}
	}
	for _, h := range hashes {
		if c.receipt(h).Status != types.ReceiptStatusSuccessful {
			c.t.Fatalf("mint %s reverted", h)
		}
	}
}

func (c *batchChain) call(to common.Address, data []byte) []byte {
	c.t.Helper()
	ret, err := c.d.Client().CallContract(context.Background(), ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return ret
}

func (c *batchChain) balance(a common.Address) uint64 {
	c.t.Helper()
	v, err := evm.DecodeUint256(c.call(c.token, evm.BalanceOfCalldata(a)))
	if err != nil || !v.Big().IsUint64() {
		c.t.Fatalf("balanceOf: %v %v", v, err)
	}
	return v.Big().Uint64()
}

func (c *batchChain) used(a *evm.Authorization) bool {
	c.t.Helper()
	used, err := evm.DecodeBool(c.call(c.token, evm.AuthorizationStateCalldata(a.From, a.Nonce)))
	if err != nil {
		c.t.Fatal(err)
	}
	return used
}

// batchPayer is a key that holds tokens and no ETH, like an x402 buyer.
type batchPayer struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newPayers(t testing.TB, n int) []batchPayer {
	t.Helper()
	out := make([]batchPayer, n)
	for i := range out {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = batchPayer{key: k, addr: crypto.PubkeyToAddress(k.PublicKey)}
	}
	return out
}

func addrs(ps []batchPayer) []common.Address {
	var out []common.Address
	for _, p := range ps {
		out = append(out, p.addr)
	}
	return out
}

// authorize signs an authorization of value from p to to, valid for a day: the devnet's
// clock runs ahead of real time when the tests send many blocks.
func (c *batchChain) authorize(p batchPayer, to common.Address, value uint64) evm.BatchItem {
	c.t.Helper()
	nonce, err := evm.NewNonce()
	if err != nil {
		c.t.Fatal(err)
	}
	it := evm.BatchItem{Auth: evm.Authorization{From: p.addr, To: to, Value: evm.NewAmount(value),
		ValidBefore: uint64(time.Now().Add(24 * time.Hour).Unix()), Nonce: nonce}}
	c.sign(p, &it)
	return it
}

func (c *batchChain) sign(p batchPayer, it *evm.BatchItem) {
	c.t.Helper()
	sig, err := evm.SignAuthorization(p.key, c.domain, &it.Auth)
	if err != nil {
		c.t.Fatal(err)
	}
	it.Sig = sig
}

// settleWith sends settle(token, perItemGas, items) to the settler with a given gas limit.
func (c *batchChain) settleWith(tokenAddr common.Address, perItemGas uint64, items []evm.BatchItem, gas uint64) *types.Receipt {
	c.t.Helper()
	return c.sendTx(c.relayer, &c.settler, evm.BatchSettleCalldata(tokenAddr, perItemGas, items), gas)
}

// settle settles items with QuidToken and BatchGasLimit, requires the transaction to succeed
// and checks the decoder against the bindings and the chain before returning the outcomes.
func (c *batchChain) settle(items []evm.BatchItem) (*types.Receipt, []evm.BatchOutcome) {
	c.t.Helper()
	r := c.settleWith(c.token, testPerItemGas, items, evm.BatchGasLimit(testPerItemGas, len(items)))
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("settle of %d items reverted", len(items))
	}
	return r, c.decode(r, items)
}

// decode decodes the outcomes of a settle of items with QuidToken and checks them, item by
// item, against what the generated bindings read in the receipt and against the chain: the
// failed items are the settler's Failed events, in order; the paid items are the token's
// AuthorizationUsed events, in order, each followed by the Transfer the item authorizes, and
// their nonces are used. QuidToken logs like USDC, so no item is Settled without being Paid.
func (c *batchChain) decode(r *types.Receipt, items []evm.BatchItem) []evm.BatchOutcome {
	c.t.Helper()
	got, err := evm.DecodeBatchResults(r, c.settler, c.token, items)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(got) != len(items) {
		c.t.Fatalf("%d outcomes for %d items", len(got), len(items))
	}
	var failed []*batch.QuidBatchSettlerFailed
	var used []int // indices in r.Logs of the token's AuthorizationUsed events
	for i, l := range r.Logs {
		switch l.Address {
		case c.settler:
			e, err := batchSettler.UnpackFailedEvent(l)
			if err != nil {
				c.t.Fatalf("settler log %d is not a Failed event: %v", l.Index, err)
			}
			failed = append(failed, e)
		case c.token:
			if _, err := batchToken.UnpackAuthorizationUsedEvent(l); err == nil {
				used = append(used, i)
			}
		default:
			c.t.Fatalf("log %d from %s", l.Index, l.Address)
		}
	}
	nf, nu := 0, 0
	for i, o := range got {
		a := &items[i].Auth
		switch {
		case !o.Settled:
			if nf == len(failed) {
				c.t.Fatalf("item %d: decoded as failed, but the bindings find %d Failed events", i, len(failed))
			}
			e := failed[nf]
			nf++
			if e.Token != c.token || e.From != a.From || e.Nonce != a.Nonce || !bytes.Equal(e.Reason, o.Reason) {
				c.t.Fatalf("item %d: decoded %+v, the bindings read %+v", i, o, e)
			}
		case o.Paid():
			if nu == len(used) || used[nu]+1 >= len(r.Logs) {
				c.t.Fatalf("item %d: decoded as paid, but the bindings find %d AuthorizationUsed events", i, len(used))
			}
			u, _ := batchToken.UnpackAuthorizationUsedEvent(r.Logs[used[nu]])
			tr, err := batchToken.UnpackTransferEvent(r.Logs[used[nu]+1])
			nu++
			if u.Authorizer != a.From || u.Nonce != a.Nonce || err != nil ||
				tr.From != a.From || tr.To != a.To || tr.Value.Cmp(a.Value.Big()) != 0 {
				c.t.Fatalf("item %d: decoded as paid, the bindings read %+v then %+v (%v)", i, u, tr, err)
			}
			if !c.used(a) {
				c.t.Fatalf("item %d: paid but the token has not used its nonce", i)
			}
		default:
			c.t.Fatalf("item %d: Settled but not Paid with QuidToken: %+v", i, o)
		}
	}
	if nf != len(failed) || nu != len(used) {
		c.t.Fatalf("decoded %d failed and %d paid items; the bindings find %d Failed and %d AuthorizationUsed events",
			nf, nu, len(failed), len(used))
	}
	return got
}

// expectation is what a batch should have done with one item.
type expectation struct {
	item evm.BatchItem
	// want is "" for a payment, or what the item's failure reason must contain.
	want string
}

// check verifies each item's outcome, the token's state and, for payments, the Transfer log.
func (c *batchChain) check(got []evm.BatchOutcome, exp []expectation) {
	c.t.Helper()
	if len(got) != len(exp) {
		c.t.Fatalf("%d outcomes for %d items", len(got), len(exp))
	}
	for i, e := range exp {
		o := got[i]
		switch {
		case e.want == "" && !o.Paid():
			c.t.Errorf("item %d: not paid: %+v (%q)", i, o, o.RevertMessage())
		case e.want == "" && !c.used(&e.item.Auth):
			c.t.Errorf("item %d: paid but the token has not used its nonce", i)
		case e.want != "" && o.Settled:
			c.t.Errorf("item %d: settled, want a failure containing %q", i, e.want)
		case e.want != "" && e.want != "NotAttempted" && !strings.Contains(o.RevertMessage(), e.want):
			c.t.Errorf("item %d: failed with %q (%x), want %q", i, o.RevertMessage(), o.Reason, e.want)
		case e.want == "NotAttempted" && !o.NotAttempted():
			c.t.Errorf("item %d: reason %x, want NotAttempted()", i, o.Reason)
		}
	}
}

func TestBatchSettlesAll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		payers, payees  int
		items           int
		value           uint64
		repeatedPayment bool
	}{
		{name: "one item", payers: 1, payees: 1, items: 1, value: 10_000},
		{name: "one payer many payments", payers: 1, payees: 1, items: 12, value: 1},
		{name: "several payers one seller", payers: 5, payees: 1, items: 20, value: 2_500},
		{name: "several payers several sellers", payers: 7, payees: 3, items: 40, value: 123_456},
		{name: "payees with no balance", payers: 3, payees: 9, items: 9, value: 1_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newBatchChain(t)
			payers, payees := newPayers(t, tt.payers), newPayers(t, tt.payees)
			c.mint(tt.value*uint64(tt.items), addrs(payers)...)
			if tt.name != "payees with no balance" {
				c.mint(1, addrs(payees)...)
			}
			before := map[common.Address]uint64{}
			for _, p := range append(append([]batchPayer(nil), payers...), payees...) {
				before[p.addr] = c.balance(p.addr)
			}

			var exp []expectation
			var items []evm.BatchItem
			delta := map[common.Address]int64{}
			for i := range tt.items {
				from, to := payers[i%len(payers)], payees[i%len(payees)]
				it := c.authorize(from, to.addr, tt.value)
				items = append(items, it)
				exp = append(exp, expectation{item: it})
				delta[from.addr] -= int64(tt.value)
				delta[to.addr] += int64(tt.value)
			}
			r, got := c.settle(items)
			c.check(got, exp)
			if n := countLogs(r.Logs, c.token, evm.TransferTopic); n != tt.items {
				t.Errorf("%d Transfer logs, want %d", n, tt.items)
			}
			if n := countLogs(r.Logs, c.token, evm.AuthorizationUsedTopic); n != tt.items {
				t.Errorf("%d AuthorizationUsed logs, want %d", n, tt.items)
			}
			if len(r.Logs) != 2*tt.items {
				t.Errorf("%d logs for %d payments, want exactly the token's two per payment", len(r.Logs), tt.items)
			}
			for a, b := range before {
				if got, want := int64(c.balance(a)), int64(b)+delta[a]; got != want {
					t.Errorf("balance of %s = %d, want %d", a, got, want)
				}
			}
			if b := c.balance(c.settler); b != 0 {
				t.Errorf("the settler holds %d tokens", b)
			}
		})
	}
}

func countLogs(logs []*types.Log, addr common.Address, topic common.Hash) int {
	n := 0
	for _, l := range logs {
		if l.Address == addr && len(l.Topics) > 0 && l.Topics[0] == topic {
			n++
		}
	}
	return n
}

// badItem makes an authorization the token must refuse, and says why.
type badItem struct {
	name string
	make func(c *batchChain, payer, other batchPayer, seller common.Address) evm.BatchItem
	want string // what the token's revert message contains
}

var badItems = []badItem{
	{"used nonce", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		r := c.sendTx(c.relayer, &c.token, evm.TransferWithAuthorizationCalldata(&it.Auth, it.Sig), 200_000)
		if r.Status != types.ReceiptStatusSuccessful {
			c.t.Fatal("settling the authorization beforehand failed")
		}
		return it
	}, "authorization is used or canceled"},
	{"cancelled", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		c.cancel(p, it.Auth.Nonce)
		return it
	}, "authorization is used or canceled"},
	{"signed by another key", func(c *batchChain, p, other batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		c.sign(other, &it)
		return it
	}, "invalid signature"},
	{"value changed after signing", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		it.Auth.Value = evm.NewAmount(6)
		return it
	}, "invalid signature"},
	{"payee changed after signing", func(c *batchChain, p, other batchPayer, _ common.Address) evm.BatchItem {
		it := c.authorize(p, other.addr, 5)
		it.Auth.To = c.relayer.Address
		return it
	}, "invalid signature"},
	{"high s", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		it.Sig = malleate(it.Sig)
		return it
	}, "invalid signature 's' value"},
	{"expired", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		it.Auth.ValidBefore = uint64(time.Now().Add(-time.Hour).Unix())
		c.sign(p, &it)
		return it
	}, "authorization is expired"},
	{"not yet valid", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		it := c.authorize(p, seller, 5)
		it.Auth.ValidAfter = uint64(time.Now().Add(30 * 24 * time.Hour).Unix())
		it.Auth.ValidBefore = it.Auth.ValidAfter + 3600
		c.sign(p, &it)
		return it
	}, "authorization is not yet valid"},
	{"insufficient balance", func(c *batchChain, p, _ batchPayer, seller common.Address) evm.BatchItem {
		return c.authorize(p, seller, 1_000_000_000_000)
	}, "transfer amount exceeds balance"},
}

// cancel burns p's nonce with a signed cancelAuthorization, sent by the relayer.
func (c *batchChain) cancel(p batchPayer, nonce [32]byte) {
	c.t.Helper()
	typeHash := crypto.Keccak256([]byte("CancelAuthorization(address authorizer,bytes32 nonce)"))
	sep := c.domain.Separator()
	digest := crypto.Keccak256([]byte{0x19, 0x01}, sep[:], crypto.Keccak256(typeHash, common.LeftPadBytes(p.addr[:], 32), nonce[:]))
	sig, err := evm.Sign(p.key, [32]byte(digest))
	if err != nil {
		c.t.Fatal(err)
	}
	r := c.sendTx(c.relayer, &c.token, batchToken.PackCancelAuthorization(p.addr, nonce, sig.V(), sig.R(), sig.S()), 200_000)
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatal("cancelAuthorization reverted")
	}
}

// TestBatchPartialFailure puts invalid authorizations between valid ones: the batch succeeds,
// the valid ones are paid and exactly the invalid ones are reported Failed with the token's
// reason, leaving balances as if only the valid ones had been sent.
func TestBatchPartialFailure(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, bad []badItem) {
		c := newBatchChain(t)
		ps := newPayers(t, 3)
		payer, other, seller := ps[0], ps[1], ps[2]
		c.mint(1_000_000, payer.addr, other.addr, seller.addr)
		var exp []expectation
		paid := uint64(0)
		for i, b := range bad {
			p, q := payer, other // alternate payers; q is the other one
			if i%2 == 1 {
				p, q = q, p
			}
			exp = append(exp, expectation{item: b.make(c, p, q, seller.addr), want: b.want})
			good := c.authorize(p, seller.addr, 100)
			exp = append(exp, expectation{item: good})
			paid += 100
		}
		before := c.balance(seller.addr)
		var items []evm.BatchItem
		for _, e := range exp {
			items = append(items, e.item)
		}
		r, got := c.settle(items)
		c.check(got, exp)
		if n := countLogs(r.Logs, c.settler, evm.BatchFailedTopic); n != len(bad) {
			t.Errorf("%d Failed events, want %d", n, len(bad))
		}
		if n := countLogs(r.Logs, c.token, evm.TransferTopic); n != len(bad) {
			t.Errorf("%d Transfer logs, want %d", n, len(bad))
		}
		if b := c.balance(seller.addr); b != before+paid {
			t.Errorf("seller received %d, want %d", b-before, paid)
		}
	}
	for _, b := range badItems {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			run(t, []badItem{b})
		})
	}
	t.Run("all at once", func(t *testing.T) {
		t.Parallel()
		run(t, badItems)
	})
}

// TestBatchWithinOneBatch covers failures that only arise inside a batch: the same
// authorization twice, and a payer whose balance covers the first of two payments.
func TestBatchWithinOneBatch(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	ps := newPayers(t, 3)
	payer, poor, seller := ps[0], ps[1], ps[2]
	c.mint(1_000, payer.addr, poor.addr, seller.addr)

	twice := c.authorize(payer, seller.addr, 10)
	first, second := c.authorize(poor, seller.addr, 600), c.authorize(poor, seller.addr, 600)
	_, got := c.settle([]evm.BatchItem{twice, first, twice, second})
	c.check(got, []expectation{
		{item: twice},
		{item: first},
		{item: twice, want: "authorization is used or canceled"},
		{item: second, want: "transfer amount exceeds balance"},
	})
	if b := c.balance(seller.addr); b != 1_000+10+600 {
		t.Errorf("seller balance %d", b)
	}
}

// TestBatchTwins settles payments that differ only in their nonces, the same payer paying the
// same seller the same value, some of them failing: each outcome goes to its own authorization,
// which the token's Transfer logs alone could not tell apart.
func TestBatchTwins(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	ps := newPayers(t, 3)
	payer, other, seller := ps[0], ps[1], ps[2]
	c.mint(1_000, payer.addr, seller.addr)

	twin := func() evm.BatchItem { return c.authorize(payer, seller.addr, 5) }
	cancelled, paid1, badSig, paid2 := twin(), twin(), twin(), twin()
	c.cancel(payer, cancelled.Auth.Nonce)
	c.sign(other, &badSig)
	items := []evm.BatchItem{cancelled, paid1, badSig, paid2, paid1}
	r, got := c.settle(items)
	c.check(got, []expectation{
		{item: cancelled, want: "authorization is used or canceled"},
		{item: paid1},
		{item: badSig, want: "invalid signature"},
		{item: paid2},
		{item: paid1, want: "authorization is used or canceled"},
	})
	if used := c.used(&badSig.Auth); used {
		t.Error("the badly signed twin's nonce is used")
	}
	if b := c.balance(seller.addr); b != 1_000+2*5 {
		t.Errorf("seller balance %d, want two payments", b)
	}

	// Read against the items in another order, the same receipt does not fit: outcomes follow
	// the nonces, not the interchangeable Transfer logs.
	swapped := []evm.BatchItem{cancelled, paid2, badSig, paid1, paid1}
	if got, err := evm.DecodeBatchResults(r, c.settler, c.token, swapped); !errors.Is(err, evm.ErrBatchLog) {
		t.Errorf("twins swapped: %+v, %v; want ErrBatchLog", got, err)
	}
}

// TestBatchReplay sends the same batch twice: the second settles nothing and reports every
// item Failed as used, with the transaction still successful.
func TestBatchReplay(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	payers := newPayers(t, 4)
	seller := payers[3]
	c.mint(1_000, addrs(payers)...)
	var items []evm.BatchItem
	var exp, replay []expectation
	for i := range 9 {
		it := c.authorize(payers[i%3], seller.addr, 7)
		items = append(items, it)
		exp = append(exp, expectation{item: it})
		replay = append(replay, expectation{item: it, want: "authorization is used or canceled"})
	}
	_, got := c.settle(items)
	c.check(got, exp)
	balances := map[common.Address]uint64{}
	for _, p := range payers {
		balances[p.addr] = c.balance(p.addr)
	}

	r, got := c.settle(items)
	c.check(got, replay)
	if n := countLogs(r.Logs, c.token, evm.TransferTopic); n != 0 {
		t.Errorf("the replay moved tokens: %d Transfer logs", n)
	}
	for _, p := range payers {
		if b := c.balance(p.addr); b != balances[p.addr] {
			t.Errorf("replay changed the balance of %s: %d, was %d", p.addr, b, balances[p.addr])
		}
	}
}

// TestBatchNotAttempted gives a batch too little gas for all its items: the head settles, the
// tail is reported NotAttempted with the nonces unused, and a second batch settles the tail.
func TestBatchNotAttempted(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	payers := newPayers(t, 7)
	seller := payers[6]
	c.mint(1_000, addrs(payers)...)
	var items []evm.BatchItem
	for i := range 6 {
		items = append(items, c.authorize(payers[i], seller.addr, 3))
	}
	// Enough for two items to be attempted with their full allowance, not for six.
	r := c.settleWith(c.token, testPerItemGas, items, 260_000)
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("an under-gassed batch reverted")
	}
	got := c.decode(r, items)
	var rest []evm.BatchItem
	var exp []expectation
	for i, o := range got {
		switch {
		case o.Paid():
		case o.NotAttempted() && !c.used(&items[i].Auth):
			rest = append(rest, items[i])
			exp = append(exp, expectation{item: items[i]})
		default:
			t.Fatalf("item %d: %+v", i, o)
		}
	}
	if len(rest) == 0 || len(rest) == len(items) {
		t.Fatalf("%d of %d items not attempted, want some but not all", len(rest), len(items))
	}
	t.Logf("%d of %d items fit in 260,000 gas", len(items)-len(rest), len(items))

	_, got = c.settle(rest)
	c.check(got, exp)
}

// TestBatchPerItemGasTooLow: a call that runs out of its allowance fails with no reason and
// changes nothing; the batch goes on.
func TestBatchPerItemGasTooLow(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	ps := newPayers(t, 2)
	c.mint(1_000, addrs(ps)...)
	items := []evm.BatchItem{c.authorize(ps[0], ps[1].addr, 1), c.authorize(ps[0], ps[1].addr, 2)}
	r := c.settleWith(c.token, 25_000, items, evm.BatchGasLimit(25_000, len(items)))
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("batch reverted")
	}
	got := c.decode(r, items)
	for i, it := range items {
		o := got[i]
		if o.Settled || len(o.Reason) != 0 || o.NotAttempted() || c.used(&it.Auth) {
			t.Errorf("item %d: %+v", i, o)
		}
	}
}

// TestBatchTokenWithoutCode: settling against an address with no code reverts the whole
// transaction instead of reporting calls that did nothing as settled.
func TestBatchTokenWithoutCode(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	ps := newPayers(t, 2)
	items := []evm.BatchItem{c.authorize(ps[0], ps[1].addr, 1)}
	r := c.settleWith(ps[1].addr, testPerItemGas, items, evm.BatchGasLimit(testPerItemGas, 1))
	if r.Status != types.ReceiptStatusFailed {
		t.Fatalf("status %d, want a revert", r.Status)
	}
	if got, err := evm.DecodeBatchResults(r, c.settler, ps[1].addr, items); !errors.Is(err, evm.ErrBatchReverted) || got != nil {
		t.Errorf("decoding the reverted batch: %+v, %v", got, err)
	}
}

// deployRuntime deploys a contract whose runtime code is code, written out by hand.
func (c *batchChain) deployRuntime(code []byte) common.Address {
	c.t.Helper()
	n := byte(len(code))
	// CODECOPY(0, 12, n); RETURN(0, n); then the runtime code.
	initCode := append([]byte{0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xf3}, code...)
	r := c.sendTx(c.relayer, nil, initCode, 200_000)
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatal("deploy reverted")
	}
	return r.ContractAddress
}

// logTransferCode is runtime code that logs Transfer(from, to, value) from the arguments of a
// transferWithAuthorization call, moving nothing.
func logTransferCode() []byte {
	code := []byte{0x60, 0x44, 0x35, 0x60, 0x00, 0x52}            // MSTORE(0, value)
	code = append(code, 0x60, 0x24, 0x35, 0x60, 0x04, 0x35, 0x7f) // to, from, PUSH32
	code = append(code, evm.TransferTopic[:]...)
	return append(code, 0x60, 0x20, 0x60, 0x00, 0xa3) // LOG3(0, 32, Transfer, from, to)
}

// logAuthorizationUsedCode is runtime code that logs AuthorizationUsed(from, nonce) from the
// arguments of a transferWithAuthorization call.
func logAuthorizationUsedCode() []byte {
	code := []byte{0x60, 0xa4, 0x35, 0x60, 0x04, 0x35, 0x7f} // nonce, from, PUSH32
	code = append(code, evm.AuthorizationUsedTopic[:]...)
	return append(code, 0x60, 0x00, 0x60, 0x00, 0xa3) // LOG3(0, 0, AuthorizationUsed, from, nonce)
}

// TestBatchHostileToken runs the settler against tokens that misbehave: each can waste at most
// its items' allowance and cannot make the settler copy or log more than MaxBatchReasonBytes; a
// token that returns without logging like an EIP-3009 token gets its items Settled but not
// Paid. A token that logs like one is believed, as it would be in a lone settlement.
func TestBatchHostileToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		code  []byte
		check func(t *testing.T, o evm.BatchOutcome, it *evm.BatchItem)
	}{
		{"reverts with 100 KB", []byte{0x62, 0x01, 0x90, 0x00, 0x60, 0x00, 0xfd}, // REVERT(0, 102400)
			func(t *testing.T, o evm.BatchOutcome, _ *evm.BatchItem) {
				if o.Settled || len(o.Reason) != evm.MaxBatchReasonBytes || bytes.Count(o.Reason, []byte{0}) != len(o.Reason) {
					t.Errorf("outcome %+v, want a %d-byte zero reason", o, evm.MaxBatchReasonBytes)
				}
			}},
		{"burns all its gas", []byte{0x5b, 0x60, 0x00, 0x56}, // JUMPDEST; JUMP(0)
			func(t *testing.T, o evm.BatchOutcome, _ *evm.BatchItem) {
				if o.Settled || len(o.Reason) != 0 || o.NotAttempted() {
					t.Errorf("outcome %+v, want a failure without reason", o)
				}
			}},
		{"does nothing", []byte{0x00}, // STOP
			func(t *testing.T, o evm.BatchOutcome, _ *evm.BatchItem) {
				if !o.Settled || o.Paid() {
					t.Errorf("outcome %+v, want Settled and not Paid", o)
				}
			}},
		{"logs a Transfer, no AuthorizationUsed", logTransferCode(),
			func(t *testing.T, o evm.BatchOutcome, _ *evm.BatchItem) {
				if !o.Settled || o.Paid() {
					t.Errorf("outcome %+v, want Settled and not Paid", o)
				}
			}},
		{"logs AuthorizationUsed, no Transfer", append(logAuthorizationUsedCode(), 0x00),
			func(t *testing.T, o evm.BatchOutcome, _ *evm.BatchItem) {
				if !o.Settled || o.Paid() {
					t.Errorf("outcome %+v, want Settled and not Paid", o)
				}
			}},
		// The limit of any receipt check: the token's logs are the token's word.
		{"logs both, moving nothing", append(logAuthorizationUsedCode(), logTransferCode()...),
			func(t *testing.T, o evm.BatchOutcome, _ *evm.BatchItem) {
				if !o.Paid() {
					t.Errorf("outcome %+v, want Paid: the decoder cannot see past the token's logs", o)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newBatchChain(t)
			hostile := c.deployRuntime(tt.code)
			ps := newPayers(t, 2)
			const n = 20
			var items []evm.BatchItem
			for range n {
				items = append(items, c.authorize(ps[0], ps[1].addr, 1))
			}
			r := c.settleWith(hostile, testPerItemGas, items, evm.BatchGasLimit(testPerItemGas, n))
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatal("batch reverted")
			}
			if max := uint64(n) * (testPerItemGas + 10_000); r.GasUsed > max {
				t.Errorf("gas used %d, more than %d", r.GasUsed, max)
			}
			got, err := evm.DecodeBatchResults(r, c.settler, hostile, items)
			if err != nil {
				t.Fatal(err)
			}
			for i := range items {
				tt.check(t, got[i], &items[i])
			}
			t.Logf("%d items: %d gas", n, r.GasUsed)
		})
	}
}

// TestBatchSettlerConstants pins the constants evm/batch.go mirrors to the deployed contract's.
func TestBatchSettlerConstants(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	for _, k := range []struct {
		name string
		pack []byte
		want int64
	}{
		{"MAX_REASON_BYTES", batchSettler.PackMAXREASONBYTES(), evm.MaxBatchReasonBytes},
		{"ITEM_OVERHEAD_GAS", batchSettler.PackITEMOVERHEADGAS(), 10_000},
		{"REPORT_GAS", batchSettler.PackREPORTGAS(), 5_000},
	} {
		v, err := evm.DecodeUint256(c.call(c.settler, k.pack))
		if err != nil || v.Big().Cmp(big.NewInt(k.want)) != 0 {
			t.Errorf("%s = %v (%v), evm/batch.go assumes %d", k.name, v, err, k.want)
		}
	}
	code, err := c.d.Client().CodeAt(context.Background(), c.settler, nil)
	if err != nil || len(code) == 0 {
		t.Fatalf("settler code: %d bytes, %v", len(code), err)
	}
}

// ---------------------------------------------------------------- gas

// gasScenario measures one payment settled alone, with transferWithAuthorization sent straight
// to the token, and the gas per payment of batches. Every payer and payee already holds tokens
// and every nonce is fresh, as in real settlements.
type gasScenario struct {
	c              *batchChain
	payers, payees []batchPayer
}

func newGasScenario(t testing.TB, n int) *gasScenario {
	c := newBatchChain(t)
	s := &gasScenario{c: c, payers: newPayers(t, n), payees: newPayers(t, n)}
	c.mint(1_000_000_000, append(addrs(s.payers), addrs(s.payees)...)...)
	return s
}

// lone returns the gas of one transferWithAuthorization transaction to a payee with a balance.
func (s *gasScenario) lone(i int) uint64 {
	c := s.c
	it := c.authorize(s.payers[i%len(s.payers)], s.payees[i%len(s.payees)].addr, 1)
	r := c.sendTx(c.relayer, &c.token, evm.TransferWithAuthorizationCalldata(&it.Auth, it.Sig), 200_000)
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatal("lone transferWithAuthorization reverted")
	}
	return r.GasUsed
}

// batch returns the gas of one batch of n payments, each from a different payer, to n
// different payees, or all to one seller.
func (s *gasScenario) batch(n int, oneSeller bool) uint64 {
	c := s.c
	items := make([]evm.BatchItem, n)
	for i := range items {
		to := s.payees[i].addr
		if oneSeller {
			to = s.payees[0].addr
		}
		items[i] = c.authorize(s.payers[i], to, 1)
	}
	r := c.settleWith(c.token, testPerItemGas, items, evm.BatchGasLimit(testPerItemGas, n))
	if r.Status != types.ReceiptStatusSuccessful || countLogs(r.Logs, c.settler, evm.BatchFailedTopic) != 0 {
		c.t.Fatalf("batch of %d: status %d, %d failed", n, r.Status, countLogs(r.Logs, c.settler, evm.BatchFailedTopic))
	}
	got, err := evm.DecodeBatchResults(r, c.settler, c.token, items)
	if err != nil {
		c.t.Fatal(err)
	}
	for i, o := range got {
		if !o.Paid() {
			c.t.Fatalf("batch of %d: item %d not paid: %+v", n, i, o)
		}
	}
	return r.GasUsed
}

// TestBatchGas logs the gas of a lone payment against the gas per payment of batches of 1, 10,
// 50 and 100, and holds batches of 50 or more under 70% of a lone payment per payment, both in
// the worst case, where every item touches two cold balances (a new payer and a new payee each
// time), and in the common case, which pays one seller.
func TestBatchGas(t *testing.T) {
	t.Parallel()
	s := newGasScenario(t, 100)
	var lone uint64
	const runs = 5
	for i := range runs {
		lone += s.lone(i)
	}
	lone /= runs
	t.Logf("lone transferWithAuthorization: %d gas", lone)
	t.Logf("%5s  %-30s  %-30s", "items", "distinct payers and payees", "distinct payers, one seller")
	for _, n := range []int{1, 10, 50, 100} {
		line := fmt.Sprintf("%5d", n)
		for _, oneSeller := range []bool{false, true} {
			per := s.batch(n, oneSeller) / uint64(n)
			ratio := float64(per) / float64(lone)
			line += fmt.Sprintf("  %6d gas/payment %6.1f%%      ", per, 100*ratio)
			const limit = 0.70
			if n >= 50 && ratio >= limit {
				t.Errorf("%d items (one seller: %v): %.1f%% of a lone payment, want under %.0f%%", n, oneSeller, 100*ratio, 100*limit)
			}
		}
		t.Log(line)
	}
}

// BenchmarkBatchGas reports gas per payment (gas/payment) and its share of a lone payment
// (%lone) for batches of 1 to 100 payments to one seller; ns/op is the devnet's time.
func BenchmarkBatchGas(b *testing.B) {
	s := newGasScenario(b, 100)
	lone := s.lone(0)
	b.Run("lone", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			lone = s.lone(i)
		}
		b.ReportMetric(float64(lone), "gas/payment")
	})
	for _, n := range []int{1, 10, 50, 100} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			var gas uint64
			for b.Loop() {
				gas = s.batch(n, true)
			}
			b.ReportMetric(float64(gas)/float64(n), "gas/payment")
			b.ReportMetric(100*float64(gas)/float64(n)/float64(lone), "%lone")
		})
	}
}
