package facilitator_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

func TestSettleMovesValueOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	p := payment(t, env, req)
	before, nonce := snapshot(t, env), relayerNonce(t, env)

	resp, err := env.Facilitator.Settle(ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
	requireMoved(t, env, before, 1)
	if n := relayerNonce(t, env); n != nonce+1 {
		t.Fatalf("relayer sent %d transactions, want 1", n-nonce)
	}
	if sent := chain.Sent(); len(sent) != 1 || sent[0].Hex() != resp.Transaction {
		t.Fatalf("sent %v, want just %s", sent, resp.Transaction)
	}

	// The PAYMENT-RESPONSE a seller builds from it carries the fields buyers read.
	header, err := x402.EncodeHeader(resp)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := x402.DecodeSettleResponse(header)
	if err != nil {
		t.Fatal(err)
	}
	if !decoded.Success || decoded.Payer != env.Buyer.Address.Hex() || decoded.Transaction != resp.Transaction ||
		decoded.Network != x402.EIP155(env.Chain.ChainID()) || decoded.ErrorReason != "" {
		t.Fatalf("PAYMENT-RESPONSE %+v", decoded)
	}
	var wire map[string]any
	if err := json.Unmarshal(mustJSON(t, resp), &wire); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"success", "payer", "transaction", "network"} {
		if _, ok := wire[k]; !ok {
			t.Errorf("settle response %v lacks %q", wire, k)
		}
	}
	if _, ok := wire["errorReason"]; ok {
		t.Errorf("successful settle response carries errorReason: %v", wire)
	}

	// Presented again: refused, naming the transaction that already settled it; nothing sent,
	// nothing moved.
	again, err := env.Facilitator.Settle(ctx, p, req)
	requireFailure(t, again, err, x402.ReasonExactNonceUsed, resp.Transaction)
	if again.Payer != env.Buyer.Address.Hex() || again.Network != x402.EIP155(env.Chain.ChainID()) {
		t.Errorf("replay answer %+v lacks payer or network", again)
	}
	if n := chain.Forwarded(quidtest.SendTransaction); n != 1 {
		t.Fatalf("%d transactions sent, want 1", n)
	}
	requireMoved(t, env, before, 1)
	if n := relayerNonce(t, env); n != nonce+1 {
		t.Fatalf("relayer sent %d transactions, want 1", n-nonce)
	}
	if v, err := env.Facilitator.Verify(ctx, p, req); err != nil || v.IsValid || v.InvalidReason != x402.ReasonExactNonceUsed {
		t.Fatalf("Verify after settlement: %+v %v", v, err)
	}

	// A facilitator that never saw it (a restart, another instance) learns from the chain.
	other, otherChain := newFaultyFacilitator(t, env, nil)
	res, err := other.Settle(ctx, p, req)
	requireFailure(t, res, err, x402.ReasonExactNonceUsed, "")
	if n := otherChain.Calls(quidtest.SendTransaction); n != 0 {
		t.Fatalf("another facilitator broadcast a spent authorization %d times", n)
	}
	requireMoved(t, env, before, 1)
}

func TestSettleConcurrentCopiesOfOnePayment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	p := payment(t, env, req)
	before, nonce := snapshot(t, env), relayerNonce(t, env)

	const copies = 50
	resps := make([]*x402.SettleResponse, copies)
	errs := make([]error, copies)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() {
			<-start
			resps[i], errs[i] = env.Facilitator.Settle(ctx, p, req)
		})
	}
	close(start)
	wg.Wait()

	var winner *x402.SettleResponse
	for i, r := range resps {
		if errs[i] != nil {
			t.Fatalf("copy %d: %v", i, errs[i])
		}
		if r.Success {
			if winner != nil {
				t.Fatalf("two copies succeeded: %+v and %+v", winner, r)
			}
			winner = r
		}
	}
	if winner == nil {
		t.Fatal("no copy succeeded")
	}
	requireSettled(t, env, winner, env.Buyer.Address, env.Seller.Address, price)
	for i, r := range resps {
		switch {
		case r == winner:
		case r.ErrorReason == x402.ReasonExactNonceUsed && r.Transaction == "":
		case r.ErrorReason == x402.ReasonSettlementPending && r.Transaction == winner.Transaction:
			// Arrived while the winner waited for its receipt: told where to look.
		default:
			t.Errorf("copy %d: %+v; want nonce_already_used, or settlement_pending naming %s", i, r, winner.Transaction)
		}
	}
	if n := chain.Calls(quidtest.SendTransaction); n != 1 {
		t.Fatalf("%d broadcasts, want 1", n)
	}
	requireMoved(t, env, before, 1)
	if n := relayerNonce(t, env); n != nonce+1 {
		t.Fatalf("relayer sent %d transactions, want 1", n-nonce)
	}
}

func TestSettleConcurrentPaymentsFromOnePayer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The relayer sends one transaction at a time and the devnet mines each before answering;
	// letting block time run ahead of the clock keeps that from costing a second a block.
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Devnet: devnet.Config{MaxTimestampLead: -1}})
	req := env.Requirements(price, env.Seller.Address)
	before, nonce := snapshot(t, env), relayerNonce(t, env)

	const payments = 20
	ps := make([]*x402.PaymentPayload, payments)
	for i := range ps {
		ps[i] = payment(t, env, req)
	}
	resps := make([]*x402.SettleResponse, payments)
	errs := make([]error, payments)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range payments {
		wg.Go(func() {
			<-start
			resps[i], errs[i] = env.Facilitator.Settle(ctx, ps[i], req)
		})
	}
	close(start)
	wg.Wait()

	txs := map[string]bool{}
	var nonces []uint64
	for i, r := range resps {
		if errs[i] != nil {
			t.Fatalf("payment %d: %v", i, errs[i])
		}
		requireSettled(t, env, r, env.Buyer.Address, env.Seller.Address, price)
		if txs[r.Transaction] {
			t.Fatalf("two payments settled by one transaction %s", r.Transaction)
		}
		txs[r.Transaction] = true
		tx, _, err := env.Chain.Client().TransactionByHash(ctx, common.HexToHash(r.Transaction))
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, tx.Nonce())
	}
	slices.Sort(nonces)
	for i, n := range nonces {
		if n != nonce+uint64(i) {
			t.Fatalf("relayer nonces %v, want %d consecutive from %d", nonces, payments, nonce)
		}
	}
	if sent, refused := chain.Forwarded(quidtest.SendTransaction), chain.ChainErrors(quidtest.SendTransaction); sent != payments || refused != 0 {
		t.Fatalf("%d broadcasts, %d refused by the node; want %d and 0", sent, refused, payments)
	}
	requireMoved(t, env, before, payments)
	if n := relayerNonce(t, env); n != nonce+payments {
		t.Fatalf("relayer nonce %d, want %d", n, nonce+payments)
	}
}

// TestSettleReleasesWhatMovedNoValue settles payments the chain refuses before anything is sent —
// the payer's balance is gone, or the payer cancelled after verification. Nothing is sent, and a
// payment refused only for want of funds settles once the payer is funded again.
func TestSettleReleasesWhatMovedNoValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	key := stranger(t)
	from := crypto.PubkeyToAddress(key.PublicKey)
	env.Fund(t, from, price)
	first, _ := signed(t, key, env.Token.Domain(), req, nil)
	second, _ := signed(t, key, env.Token.Domain(), req, nil)

	resp, err := env.Facilitator.Settle(ctx, first, req)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, resp, from, env.Seller.Address, price)
	res, err := env.Facilitator.Settle(ctx, second, req)
	requireFailure(t, res, err, x402.ReasonExactInsufficientBalance, "")
	if n := chain.Calls(quidtest.SendTransaction); n != 1 {
		t.Fatalf("%d broadcasts, want 1: an unfunded authorization was sent", n)
	}
	env.Fund(t, from, price)
	res, err = env.Facilitator.Settle(ctx, second, req)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, res, from, env.Seller.Address, price)
	if got := env.Balance(t, from); !got.IsZero() {
		t.Fatalf("payer left with %s, want 0", got)
	}

	// Verified, then cancelled by the payer before settlement: the gas estimate finds out.
	p, auth := signed(t, env.Buyer.Key, env.Token.Domain(), req, nil)
	if v, err := env.Facilitator.Verify(ctx, p, req); err != nil || !v.IsValid {
		t.Fatalf("Verify: %+v %v", v, err)
	}
	env.Cancel(t, env.Buyer.Key, auth)
	res, err = env.Facilitator.Settle(ctx, p, req)
	requireFailure(t, res, err, x402.ReasonExactNonceUsed, "")
	if n := chain.Calls(quidtest.SendTransaction); n != 2 {
		t.Fatalf("%d broadcasts, want 2: a cancelled authorization was sent", n)
	}
}

// TestVerifyReservesBalance: a payer's concurrent payments are admitted only while they fit in
// its balance together. Verification holds the value until the payment settles.
func TestVerifyReservesBalance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := quidtest.NewEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	key := stranger(t)
	from := crypto.PubkeyToAddress(key.PublicKey)
	const funded, payments = 3, 12
	env.Fund(t, from, funded*price)

	ps := make([]*x402.PaymentPayload, payments)
	for i := range ps {
		ps[i], _ = signed(t, key, env.Token.Domain(), req, nil)
	}
	resps := make([]*x402.VerifyResponse, payments)
	errs := make([]error, payments)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() { resps[i], errs[i] = env.Facilitator.Verify(ctx, ps[i], req) })
	}
	wg.Wait()
	var admitted, refused []*x402.PaymentPayload
	for i, r := range resps {
		switch {
		case errs[i] != nil:
			t.Fatalf("payment %d: %v", i, errs[i])
		case r.IsValid:
			admitted = append(admitted, ps[i])
		case r.InvalidReason == x402.ReasonExactInsufficientBalance:
			refused = append(refused, ps[i])
		default:
			t.Fatalf("payment %d: %+v", i, r)
		}
	}
	if len(admitted) != funded {
		t.Fatalf("%d of %d payments admitted against a balance for %d", len(admitted), payments, funded)
	}
	// Verifying an admitted payment again does not count it twice.
	if v, err := env.Facilitator.Verify(ctx, admitted[0], req); err != nil || !v.IsValid {
		t.Fatalf("verifying an admitted payment again: %+v %v", v, err)
	}
	before := snapshot(t, env)
	for _, p := range admitted {
		resp, err := env.Facilitator.Settle(ctx, p, req)
		if err != nil {
			t.Fatal(err)
		}
		requireSettled(t, env, resp, from, env.Seller.Address, price)
	}
	if got := env.Balance(t, env.Seller.Address); got.Cmp(mustAdd(before.seller, funded*price)) != 0 {
		t.Fatalf("seller balance %s", got)
	}
	resp, err := env.Facilitator.Settle(ctx, refused[0], req)
	requireFailure(t, resp, err, x402.ReasonExactInsufficientBalance, "")

	// Settled payments release what they held: with new funds, a refused payment gets in.
	env.Fund(t, from, price)
	if v, err := env.Facilitator.Verify(ctx, refused[1], req); err != nil || !v.IsValid {
		t.Fatalf("after funding: %+v %v", v, err)
	}
	if v, err := env.Facilitator.Verify(ctx, refused[2], req); err != nil || v.InvalidReason != x402.ReasonExactInsufficientBalance {
		t.Fatalf("a second payment against the same new funds: %+v %v", v, err)
	}
	resp, err = env.Facilitator.Settle(ctx, refused[1], req)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, resp, from, env.Seller.Address, price)
}

func mustAdd(a evm.Amount, n uint64) evm.Amount {
	sum, ok := a.Add(evm.NewAmount(n))
	if !ok {
		panic("overflow")
	}
	return sum
}

// TestSettleV1 settles a payment of x402 version 1 on the chain v1 calls base-sepolia.
func TestSettleV1(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{ChainID: 84532})
	req := env.Requirements(price, env.Seller.Address)
	before := snapshot(t, env)
	p, r := decodeV1(t, env, req, nil)
	if p.X402Version != x402.V1 {
		t.Fatalf("decoded version %d", p.X402Version)
	}
	resp, err := env.Facilitator.Settle(context.Background(), p, r)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
	if resp.Network != "base-sepolia" {
		t.Fatalf("network %q; a v1 answer names the network as v1 does", resp.Network)
	}
	requireMoved(t, env, before, 1)
}

// v1Body returns a v1 /verify or /settle body paying req on the v1 network name, the signed
// authorization adjusted by mutate.
func v1Body(t testing.TB, env *quidtest.Env, req x402.PaymentRequirements, name string, mutate func(*evm.Authorization)) []byte {
	t.Helper()
	p, _ := signed(t, env.Buyer.Key, env.Token.Domain(), req, mutate)
	r1, ok := req.ToV1(x402.ResourceInfo{URL: "http://example.test/weather", Description: "weather", MimeType: "application/json"})
	if !ok {
		t.Fatalf("no v1 name for %s", req.Network)
	}
	r1.Network = name
	return mustJSON(t, map[string]any{
		"x402Version":         1,
		"paymentPayload":      map[string]any{"x402Version": 1, "scheme": "exact", "network": name, "payload": p.Payload},
		"paymentRequirements": r1,
	})
}

// decodeV1 returns a v1 payment for req as a facilitator receives it.
func decodeV1(t testing.TB, env *quidtest.Env, req x402.PaymentRequirements, mutate func(*evm.Authorization)) (*x402.PaymentPayload, x402.PaymentRequirements) {
	t.Helper()
	name, ok := req.Network.V1Name()
	if !ok {
		t.Fatalf("no v1 name for %s", req.Network)
	}
	p, r, err := x402.DecodeFacilitatorRequest(v1Body(t, env, req, name, mutate))
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}
