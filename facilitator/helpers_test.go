package facilitator_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

const price = 10_000 // $0.01 of a 6-decimal token

// fixedClock returns a clock stopped at now.
func fixedClock(now time.Time) func() time.Time { return func() time.Time { return now } }

// wallNow is the current time truncated to the second, the resolution of EIP-3009 windows.
func wallNow() time.Time { return time.Unix(time.Now().Unix(), 0) }

// newFacilitator starts another facilitator on env's chain. It shares env's relayer key, so
// only one of them may settle.
func newFacilitator(t testing.TB, env *quidtest.Env, tune func(*facilitator.Config)) *facilitator.Facilitator {
	t.Helper()
	cfg := facilitator.Config{Chain: env.Chain.Client(), ChainID: env.Chain.ChainID(),
		Relayer: env.Chain.Accounts()[quidtest.Relayer].Key, ReceiptTimeout: 10 * time.Second}
	if tune != nil {
		tune(&cfg)
	}
	f, err := facilitator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// signed returns a v2 payload from key paying req, its authorization adjusted by mutate (nil
// for none) before it is signed under domain.
func signed(t testing.TB, key *ecdsa.PrivateKey, domain evm.Domain, req x402.PaymentRequirements, mutate func(*evm.Authorization)) (*x402.PaymentPayload, evm.Authorization) {
	t.Helper()
	a := quidtest.Authorization(t, key, req)
	if mutate != nil {
		mutate(&a)
	}
	return quidtest.Payload(t, key, domain, a, req), a
}

// payment returns a valid v2 payment by env's buyer for req.
func payment(t testing.TB, env *quidtest.Env, req x402.PaymentRequirements) *x402.PaymentPayload {
	t.Helper()
	p, _ := signed(t, env.Buyer.Key, env.Token.Domain(), req, nil)
	return p
}

// relayerNonce returns how many transactions the relayer has had mined.
func relayerNonce(t testing.TB, env *quidtest.Env) uint64 {
	t.Helper()
	n, err := env.Chain.Client().NonceAt(context.Background(), env.Facilitator.Relayer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// balances is a snapshot of the buyer's and the seller's token balances.
type balances struct{ buyer, seller evm.Amount }

func snapshot(t testing.TB, env *quidtest.Env) balances {
	t.Helper()
	return balances{env.Balance(t, env.Buyer.Address), env.Balance(t, env.Seller.Address)}
}

// requireMoved fails unless exactly n payments of price moved from buyer to seller since before.
func requireMoved(t testing.TB, env *quidtest.Env, before balances, n uint64) {
	t.Helper()
	now := snapshot(t, env)
	wantBuyer, _ := before.buyer.Sub(evm.NewAmount(n * price))
	wantSeller, _ := before.seller.Add(evm.NewAmount(n * price))
	if now.buyer.Cmp(wantBuyer) != 0 || now.seller.Cmp(wantSeller) != 0 {
		t.Fatalf("balances buyer %s seller %s; want %s and %s (%d payments of %d)", now.buyer, now.seller, wantBuyer, wantSeller, n, price)
	}
}

// requireSettled checks a successful settlement and its transaction on chain: status 1, sent
// by the relayer to the token, with the token's Transfer(from, to, value) log.
func requireSettled(t testing.TB, env *quidtest.Env, resp *x402.SettleResponse, from, to common.Address, value uint64) *types.Receipt {
	t.Helper()
	if resp == nil || !resp.Success || resp.ErrorReason != "" {
		t.Fatalf("settle: %+v, want success", resp)
	}
	v1Name, _ := x402.EIP155(env.Chain.ChainID()).V1Name()
	if resp.Payer != from.Hex() || (resp.Network != x402.EIP155(env.Chain.ChainID()) && resp.Network != x402.Network(v1Name)) {
		t.Fatalf("settle: payer %q network %q; want %s and eip155:%d (or its v1 name for v1)", resp.Payer, resp.Network, from.Hex(), env.Chain.ChainID())
	}
	ctx := context.Background()
	hash := common.HexToHash(resp.Transaction)
	if resp.Transaction != hash.Hex() {
		t.Fatalf("transaction %q is not a 0x-prefixed 32-byte hash", resp.Transaction)
	}
	receipt, err := env.Chain.Client().TransactionReceipt(ctx, hash)
	if err != nil {
		t.Fatalf("receipt of %s: %v", hash, err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("settlement %s reverted", hash)
	}
	tx, _, err := env.Chain.Client().TransactionByHash(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil || sender != env.Facilitator.Relayer() || tx.To() == nil || *tx.To() != env.Token.Address ||
		[4]byte(tx.Data()[:4]) != evm.SelectorTransferWithAuthorization {
		t.Fatalf("settlement tx from %s to %v, data %x…; want relayer %s calling transferWithAuthorization on %s",
			sender, tx.To(), tx.Data()[:4], env.Facilitator.Relayer(), env.Token.Address)
	}
	want := evm.NewAmount(value).Bytes32()
	transfers := 0
	for _, l := range receipt.Logs {
		if l.Address == env.Token.Address && len(l.Topics) == 3 && l.Topics[0] == evm.TransferTopic {
			transfers++
			if common.BytesToAddress(l.Topics[1][:]) != from || common.BytesToAddress(l.Topics[2][:]) != to || common.BytesToHash(l.Data) != want {
				t.Fatalf("Transfer log %v %x, want %s -> %s of %d", l.Topics, l.Data, from, to, value)
			}
		}
	}
	if transfers != 1 {
		t.Fatalf("%d Transfer logs in the settlement, want 1", transfers)
	}
	return receipt
}

// requireFailure checks a settlement that failed with reason; tx is the transaction it must name,
// or "" for none.
func requireFailure(t testing.TB, resp *x402.SettleResponse, err error, reason x402.Reason, tx string) {
	t.Helper()
	if err != nil {
		t.Fatalf("settle: error %v, want a %s response", err, reason)
	}
	if resp.Success || resp.ErrorReason != reason || resp.Transaction != tx {
		t.Fatalf("settle: %+v; want success false, reason %s, transaction %q", resp, reason, tx)
	}
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stranger returns a key that holds nothing on any chain.
func stranger(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newFaultyFacilitator starts another facilitator on env's chain through a Faults of its own.
func newFaultyFacilitator(t testing.TB, env *quidtest.Env, tune func(*facilitator.Config)) (*facilitator.Facilitator, *quidtest.Faults) {
	t.Helper()
	chain := quidtest.NewFaults(env.Chain.Client())
	f := newFacilitator(t, env, func(c *facilitator.Config) {
		c.Chain = chain
		if tune != nil {
			tune(c)
		}
	})
	return f, chain
}
