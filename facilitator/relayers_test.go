package facilitator_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

func TestSettlementsSpreadOverSeveralRelayerKeys(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	accounts := env.Chain.Accounts()
	f, err := facilitator.New(facilitator.Config{Chain: env.Chain.Client(), ChainID: env.Chain.ChainID(),
		Relayer: accounts[quidtest.Relayer].Key, ExtraRelayers: []*ecdsa.PrivateKey{accounts[8].Key, accounts[9].Key}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := env.Requirements(1000, env.Seller.Address)
	const n = 30
	txs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		key := env.Chain.Accounts()[4+i%4].Key
		p := quidtest.Payload(t, key, env.Token.Domain(), quidtest.Authorization(t, key, req), req)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.Settle(ctx, p, req)
			if err != nil || !s.Success {
				t.Errorf("settle: %+v %v", s, err)
				return
			}
			txs[i] = s.Transaction
		}()
	}
	wg.Wait()
	senders := map[common.Address]int{}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(env.Chain.ChainID()))
	for _, h := range txs {
		tx, _, err := env.Chain.Client().TransactionByHash(ctx, common.HexToHash(h))
		if err != nil {
			t.Fatal(err)
		}
		from, err := types.Sender(signer, tx)
		if err != nil {
			t.Fatal(err)
		}
		senders[from]++
	}
	if len(senders) != 3 {
		t.Errorf("settlements sent from %d keys, want 3: %v", len(senders), senders)
	}
	sup, _ := f.Supported(ctx)
	if got := len(sup.Signers["eip155:*"]); got != 3 {
		t.Errorf("/supported lists %d signers, want 3", got)
	}
}

func TestSettlementAboveTheFeeCapIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	env, faults := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: func(c *facilitator.Config) {
		c.MaxFee = big.NewInt(1_000) // wei: far below any real settlement
	}})
	req := env.Requirements(1000, env.Seller.Address)
	p := quidtest.Payload(t, env.Buyer.Key, env.Token.Domain(), quidtest.Authorization(t, env.Buyer.Key, req), req)
	s, err := env.Facilitator.Settle(context.Background(), p, req)
	if err != nil || s.Success || s.ErrorReason != x402.ReasonUnexpectedSettleError {
		t.Fatalf("settle: %+v %v", s, err)
	}
	if n := faults.Calls(quidtest.SendTransaction); n != 0 {
		t.Fatalf("%d transactions sent above the fee cap", n)
	}
}
