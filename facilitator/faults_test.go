package facilitator_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

// shortReceipts bounds the receipt wait so that tests of lost receipts are quick.
func shortReceipts(c *facilitator.Config) { c.ReceiptTimeout = 300 * time.Millisecond }

// TestSettleChainDownBeforeBroadcast fails one chain call on the way to the broadcast with a
// transport error. Nothing was decided: Settle reports ErrUnavailable, nothing is mined, and the
// same payment settles once the chain answers again.
func TestSettleChainDownBeforeBroadcast(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method quidtest.Method
	}{
		{method: quidtest.CodeAt},
		{method: quidtest.CallContract}, // the payer's balance, read for the reservation
		{method: quidtest.EstimateGas},
		{method: quidtest.PendingNonceAt},
		{method: quidtest.SuggestGasTipCap},
		{method: quidtest.HeaderByNumber},
		// The connection was refused: the transaction provably never reached the node.
		{method: quidtest.SendTransaction},
	}
	for _, tc := range cases {
		t.Run(string(tc.method), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
			req := env.Requirements(price, env.Seller.Address)
			p := payment(t, env, req)
			before, nonce := snapshot(t, env), relayerNonce(t, env)

			chain.Set(tc.method, quidtest.Fault{Err: quidtest.TransportError(), Times: 1})
			resp, err := env.Facilitator.Settle(ctx, p, req)
			if !errors.Is(err, facilitator.ErrUnavailable) || resp != nil {
				t.Fatalf("Settle with %s down: %+v, %v; want an error wrapping ErrUnavailable", tc.method, resp, err)
			}
			if n := chain.Calls(tc.method); n == 0 {
				t.Fatalf("%s was never called: the fault tested nothing", tc.method)
			}
			if n := chain.Forwarded(quidtest.SendTransaction); n != 0 {
				t.Fatalf("%d transactions reached the chain", n)
			}
			requireMoved(t, env, before, 0)
			if n := relayerNonce(t, env); n != nonce {
				t.Fatalf("relayer sent %d transactions", n-nonce)
			}

			resp, err = env.Facilitator.Settle(ctx, p, req)
			if err != nil {
				t.Fatalf("settling again once the chain is back: %v", err)
			}
			requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
			requireMoved(t, env, before, 1)
		})
	}
}

// TestVerifyChainDown: a chain that cannot be asked decides nothing, so Verify reports
// ErrUnavailable instead of a reason, including when the failure comes while it diagnoses a
// failed simulation.
func TestVerifyChainDown(t *testing.T) {
	t.Parallel()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	broke := stranger(t)
	brokeP, _ := signed(t, broke, env.Token.Domain(), req, nil)
	cases := []struct {
		name  string
		p     *x402.PaymentPayload
		fault quidtest.Fault
	}{
		{"eth_getCode", payment(t, env, req), quidtest.Fault{Err: quidtest.TransportError()}},
		{"simulation", payment(t, env, req), quidtest.Fault{Err: quidtest.TransportError()}},
		{"simulation timeout", payment(t, env, req), quidtest.Fault{Err: quidtest.TimeoutError()}},
		{"reservation: balanceOf", payment(t, env, req), quidtest.Fault{Skip: 1, Err: quidtest.TransportError()}},
		// The simulation reverts (the payer has nothing); the chain then fails the questions
		// that explain why.
		{"diagnosis: authorizationState", brokeP, quidtest.Fault{Skip: 1, Err: quidtest.TransportError()}},
		{"diagnosis: name, version, balance", brokeP, quidtest.Fault{Skip: 2, Err: quidtest.TransportError()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := quidtest.CallContract
			if tc.name == "eth_getCode" {
				method = quidtest.CodeAt
			}
			chain.Set(method, tc.fault)
			defer chain.Heal()
			calls := chain.Calls(method)
			resp, err := env.Facilitator.Verify(context.Background(), tc.p, req)
			if !errors.Is(err, facilitator.ErrUnavailable) || resp != nil {
				t.Fatalf("Verify: %+v, %v; want an error wrapping ErrUnavailable", resp, err)
			}
			if chain.Calls(method) == calls {
				t.Fatalf("%s never called", method)
			}
		})
	}
	// Healed, the same payments get their verdicts.
	if v, err := env.Facilitator.Verify(context.Background(), payment(t, env, req), req); err != nil || !v.IsValid {
		t.Fatalf("healthy chain: %+v %v", v, err)
	}
	if v, err := env.Facilitator.Verify(context.Background(), brokeP, req); err != nil || v.InvalidReason != x402.ReasonExactInsufficientBalance {
		t.Fatalf("healthy chain, broke payer: %+v %v", v, err)
	}
}

// TestSettleBroadcastAnswerLost: the node takes the transaction but its answer is lost (a read
// timeout). The facilitator must not send again; the receipt decides, and it says paid.
func TestSettleBroadcastAnswerLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	before := snapshot(t, env)

	chain.Set(quidtest.SendTransaction, quidtest.Fault{Err: quidtest.TimeoutError(), After: true, Times: 1})
	resp, err := env.Facilitator.Settle(ctx, payment(t, env, req), req)
	if err != nil {
		t.Fatal(err)
	}
	sent := chain.Sent()
	if len(sent) != 1 || chain.Calls(quidtest.SendTransaction) != 1 {
		t.Fatalf("sent %v in %d calls, want one transaction in one call", sent, chain.Calls(quidtest.SendTransaction))
	}
	if resp.Transaction != sent[0].Hex() {
		t.Fatalf("settled by %s, but the transaction sent was %s", resp.Transaction, sent[0])
	}
	requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
	requireMoved(t, env, before, 1)

	// The relayer's next transaction takes the next nonce, not the one the lost answer was for.
	resp, err = env.Facilitator.Settle(ctx, payment(t, env, req), req)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
	if n := chain.ChainErrors(quidtest.SendTransaction); n != 0 {
		t.Fatalf("the node refused %d broadcasts (nonce reuse?)", n)
	}
	requireMoved(t, env, before, 2)
}

// TestSettleReceiptNotSeenInTime: the transaction is mined but its receipt does not show up within
// ReceiptTimeout. Settle says settlement_pending with the hash; settling the same payment again
// reconciles against that transaction and never sends another.
func TestSettleReceiptNotSeenInTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
	req := env.Requirements(price, env.Seller.Address)
	p := payment(t, env, req)
	before := snapshot(t, env)

	chain.Set(quidtest.TransactionReceipt, quidtest.Fault{Err: ethereum.NotFound})
	began := time.Now()
	resp, err := env.Facilitator.Settle(ctx, p, req)
	took := time.Since(began)
	sent := chain.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %v, want one transaction", sent)
	}
	tx := sent[0].Hex()
	requireFailure(t, resp, err, x402.ReasonSettlementPending, tx)
	if resp.Payer != env.Buyer.Address.Hex() {
		t.Errorf("pending answer names payer %q", resp.Payer)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("Settle gave up after %s; ReceiptTimeout is 300ms", took)
	}
	if n := chain.Calls(quidtest.TransactionReceipt); n < 2 {
		t.Errorf("receipt asked for %d times in 300ms; want polling", n)
	}
	requireMoved(t, env, before, 1) // it was mined; only the facilitator does not know yet

	// Asked again while receipts are still hidden: still pending, same transaction.
	resp, err = env.Facilitator.Settle(ctx, p, req)
	requireFailure(t, resp, err, x402.ReasonSettlementPending, tx)

	chain.Clear(quidtest.TransactionReceipt)
	resp, err = env.Facilitator.Settle(ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Transaction != tx {
		t.Fatalf("reconciled to %s, want the first transaction %s", resp.Transaction, tx)
	}
	requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)

	// Success is told once.
	resp, err = env.Facilitator.Settle(ctx, p, req)
	if err != nil || resp.Success {
		t.Fatalf("after the reported success: %+v %v", resp, err)
	}
	if n := chain.Calls(quidtest.SendTransaction); n != 1 {
		t.Fatalf("SendTransaction called %d times, want exactly 1", n)
	}
	requireMoved(t, env, before, 1)
}

// TestSettleReceiptWithoutPayment: the receipt shows no payment — the transaction reverted, or
// succeeded without the token's Transfer log (a token that returns instead of reverting on a
// spent nonce). The settlement fails with the hash and the authorization is never sent again.
func TestSettleReceiptWithoutPayment(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		receipt func(*types.Receipt) *types.Receipt
		reason  x402.Reason
	}{
		{"status 0", quidtest.Reverted, x402.ReasonExactTransactionFailed},
		{"no Transfer log", quidtest.WithoutLogs, x402.ReasonExactTransferEvent},
		{"Transfer of another value", transferValue(price - 1), x402.ReasonExactTransferEvent},
		{"Transfer from another token", transferEmitter(crypto.PubkeyToAddress(stranger(t).PublicKey)), x402.ReasonExactTransferEvent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
			req := env.Requirements(price, env.Seller.Address)
			p := payment(t, env, req)
			// The world the facilitator sees agrees with the receipt: no Transfer anywhere.
			chain.Set(quidtest.TransactionReceipt, quidtest.Fault{Receipt: tc.receipt})
			chain.Set(quidtest.FilterLogs, quidtest.Fault{Logs: quidtest.NoLogs})

			resp, err := env.Facilitator.Settle(ctx, p, req)
			sent := chain.Sent()
			if len(sent) != 1 {
				t.Fatalf("sent %v, want one transaction", sent)
			}
			requireFailure(t, resp, err, tc.reason, sent[0].Hex())

			for range 2 {
				resp, err = env.Facilitator.Settle(ctx, p, req)
				if err != nil || resp.Success {
					t.Fatalf("settling again: %+v %v; want a failure", resp, err)
				}
				if resp.Transaction != "" && resp.Transaction != sent[0].Hex() {
					t.Fatalf("settling again names transaction %s, want none or %s", resp.Transaction, sent[0])
				}
			}
			if n := chain.Calls(quidtest.SendTransaction); n != 1 {
				t.Fatalf("SendTransaction called %d times, want exactly 1", n)
			}
		})
	}
}

// transferValue rewrites the token's Transfer log to carry another value.
func transferValue(v uint64) func(*types.Receipt) *types.Receipt {
	return func(r *types.Receipt) *types.Receipt {
		word := evm.NewAmount(v).Bytes32()
		r.Logs = rewriteTransfers(r.Logs, func(l *types.Log) { l.Data = word[:] })
		return r
	}
}

// transferEmitter rewrites the Transfer log as if another contract had emitted it.
func transferEmitter(a common.Address) func(*types.Receipt) *types.Receipt {
	return func(r *types.Receipt) *types.Receipt {
		r.Logs = rewriteTransfers(r.Logs, func(l *types.Log) { l.Address = a })
		return r
	}
}

func rewriteTransfers(logs []*types.Log, change func(*types.Log)) []*types.Log {
	out := make([]*types.Log, len(logs))
	for i, l := range logs {
		cp := *l
		if len(cp.Topics) > 0 && cp.Topics[0] == evm.TransferTopic {
			change(&cp)
		}
		out[i] = &cp
	}
	return out
}

// TestSettleGasCap: a settlement that needs more gas than MaxGas (the estimate plus the 20%
// margin) is refused before anything is sent, and stays refused rather than claimed; at exactly
// the cap it goes through.
func TestSettleGasCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := quidtest.NewEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	p, auth := signed(t, env.Buyer.Key, env.Token.Domain(), req, nil)
	ex, err := p.ExactEVM()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := evm.ParseSignature(ex.Signature)
	if err != nil {
		t.Fatal(err)
	}
	token := env.Token.Address
	est, err := env.Chain.Client().EstimateGas(ctx, ethereum.CallMsg{From: env.Facilitator.Relayer(), To: &token,
		Data: evm.TransferWithAuthorizationCalldata(&auth, sig)})
	if err != nil {
		t.Fatal(err)
	}
	need := est + est/5
	before := snapshot(t, env)

	low, lowChain := newFaultyFacilitator(t, env, func(c *facilitator.Config) { c.MaxGas = need - 1 })
	for range 2 { // refused twice: the first refusal released its claim
		resp, err := low.Settle(ctx, p, req)
		requireFailure(t, resp, err, x402.ReasonExactSimulationFailed, "")
		if !strings.Contains(resp.ErrorMessage, "gas") {
			t.Errorf("message %q does not say why", resp.ErrorMessage)
		}
	}
	if n := lowChain.Calls(quidtest.SendTransaction) + lowChain.Calls(quidtest.PendingNonceAt); n != 0 {
		t.Fatalf("the relayer was used %d times for a refused settlement", n)
	}
	requireMoved(t, env, before, 0)

	exact, _ := newFaultyFacilitator(t, env, func(c *facilitator.Config) { c.MaxGas = need })
	resp, err := exact.Settle(ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
	requireMoved(t, env, before, 1)
}

// TestSettleBroadcastRefused: the node answers the broadcast with a JSON-RPC error. That is a
// decision, not an outage: a failure without ErrUnavailable, the claim released, and the relayer's
// nonce read again from the chain so the next settlement goes through.
func TestSettleBroadcastRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("injected", func(t *testing.T) {
		t.Parallel()
		env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
		req := env.Requirements(price, env.Seller.Address)
		before := snapshot(t, env)
		warm := payment(t, env, req)
		if resp, err := env.Facilitator.Settle(ctx, warm, req); err != nil || !resp.Success {
			t.Fatalf("first settlement: %+v %v", resp, err)
		}
		seeded := chain.Calls(quidtest.PendingNonceAt)

		refused := payment(t, env, req)
		chain.Set(quidtest.SendTransaction, quidtest.Fault{Err: quidtest.Rejection("nonce too low: next nonce 1, tx nonce 0"), Times: 1})
		resp, err := env.Facilitator.Settle(ctx, refused, req)
		requireFailure(t, resp, err, x402.ReasonUnexpectedSettleError, "")
		if !strings.Contains(resp.ErrorMessage, "nonce too low") {
			t.Errorf("message %q hides the node's answer", resp.ErrorMessage)
		}
		if n := chain.Forwarded(quidtest.SendTransaction); n != 1 {
			t.Fatalf("%d transactions reached the chain, want only the first", n)
		}

		resp, err = env.Facilitator.Settle(ctx, payment(t, env, req), req)
		if err != nil {
			t.Fatal(err)
		}
		requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
		if chain.Calls(quidtest.PendingNonceAt) <= seeded {
			t.Errorf("relayer nonce not read again after the refusal")
		}
		resp, err = env.Facilitator.Settle(ctx, refused, req)
		if err != nil {
			t.Fatal(err)
		}
		requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
		requireMoved(t, env, before, 3)
	})

	t.Run("stale relayer nonce", func(t *testing.T) {
		t.Parallel()
		env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{})
		req := env.Requirements(price, env.Seller.Address)
		before := snapshot(t, env)
		if resp, err := env.Facilitator.Settle(ctx, payment(t, env, req), req); err != nil || !resp.Success {
			t.Fatalf("first settlement: %+v %v", resp, err)
		}
		// Someone else uses the relayer's key: the facilitator's next nonce is now taken, and the
		// node itself refuses the broadcast.
		env.Send(t, env.Chain.Accounts()[quidtest.Relayer].Key, env.Token.Address, evm.BalanceOfCalldata(env.Buyer.Address))

		refused := payment(t, env, req)
		resp, err := env.Facilitator.Settle(ctx, refused, req)
		if errors.Is(err, facilitator.ErrUnavailable) {
			t.Fatalf("a refusal by the node reported as an outage: %v", err)
		}
		requireFailure(t, resp, err, x402.ReasonUnexpectedSettleError, "")
		if n := chain.ChainErrors(quidtest.SendTransaction); n != 1 {
			t.Fatalf("the node refused %d broadcasts, want 1", n)
		}
		for _, p := range []*x402.PaymentPayload{payment(t, env, req), refused} {
			resp, err := env.Facilitator.Settle(ctx, p, req)
			if err != nil {
				t.Fatal(err)
			}
			requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
		}
		requireMoved(t, env, before, 3)
	})
}

// TestSettlePendingRetriedConcurrently: once the receipt of a pending settlement shows up, many
// callers re-presenting the payment at once reconcile it, and exactly one hears success.
func TestSettlePendingRetriedConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
	req := env.Requirements(price, env.Seller.Address)
	p := payment(t, env, req)
	before := snapshot(t, env)

	chain.Set(quidtest.TransactionReceipt, quidtest.Fault{Err: ethereum.NotFound})
	resp, err := env.Facilitator.Settle(ctx, p, req)
	if err != nil || resp.ErrorReason != x402.ReasonSettlementPending || resp.Transaction == "" {
		t.Fatalf("first settle: %+v %v; want settlement_pending with a hash", resp, err)
	}
	tx := resp.Transaction
	chain.Clear(quidtest.TransactionReceipt)

	const callers = 20
	resps := make([]*x402.SettleResponse, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			resps[i], errs[i] = env.Facilitator.Settle(ctx, p, req)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, r := range resps {
		switch {
		case errs[i] != nil:
			t.Errorf("caller %d: %v", i, errs[i])
		case r.Success:
			wins++
			if r.Transaction != tx {
				t.Errorf("caller %d told success with %s, want %s", i, r.Transaction, tx)
			}
		case r.ErrorReason == x402.ReasonExactNonceUsed, r.ErrorReason == x402.ReasonSettlementPending && r.Transaction == tx:
		default:
			t.Errorf("caller %d: %+v", i, r)
		}
	}
	if wins != 1 {
		t.Fatalf("%d callers told success, want exactly 1", wins)
	}
	if n := chain.Calls(quidtest.SendTransaction); n != 1 {
		t.Fatalf("SendTransaction called %d times, want 1", n)
	}
	requireMoved(t, env, before, 1)
}

// TestSettleFrontRun: someone else submits the payer's authorization (it is public once
// presented) just before the facilitator's transaction lands, so ours reverts. The payee was
// paid all the same, and a settlement observed on chain from someone else's transaction counts
// as paid.
func TestSettleFrontRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
	req := env.Requirements(price, env.Seller.Address)
	p, auth := signed(t, env.Buyer.Key, env.Token.Domain(), req, nil)
	ex, _ := p.ExactEVM()
	sig, err := evm.ParseSignature(ex.Signature)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, env)
	frontRunner := env.Chain.Accounts()[6].Key
	chain.Set(quidtest.SendTransaction, quidtest.Fault{Times: 1, Hook: func() {
		env.Send(t, frontRunner, env.Token.Address, evm.TransferWithAuthorizationCalldata(&auth, sig))
	}})

	resp, err := env.Facilitator.Settle(ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	requireMoved(t, env, before, 1)
	ours := chain.Sent()
	if len(ours) != 1 {
		t.Fatalf("sent %v", ours)
	}
	if r := env.Receipt(t, ours[0]); r.Status != 0 {
		t.Fatalf("our transaction: %+v; want it reverted (the scenario did not happen)", r)
	}
	if !resp.Success {
		t.Fatalf("front-run settlement: %+v; want success naming the transaction that paid", resp)
	}
	if resp.Transaction == ours[0].Hex() {
		t.Fatalf("success names our reverted transaction %s", resp.Transaction)
	}
	r, err := env.Chain.Client().TransactionReceipt(ctx, common.HexToHash(resp.Transaction))
	if err != nil || r.Status != 1 {
		t.Fatalf("success names %s: %+v %v", resp.Transaction, r, err)
	}
	again, err := env.Facilitator.Settle(ctx, p, req)
	requireFailure(t, again, err, x402.ReasonExactNonceUsed, resp.Transaction)
}

// settleUntilKnown presents a payment again, as a client would, while its settlement is pending.
func settleUntilKnown(ctx context.Context, env *quidtest.Env, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.SettleResponse, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := env.Facilitator.Settle(ctx, p, req)
		if (err == nil && resp.ErrorReason != x402.ReasonSettlementPending) || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSettleBroadcastNeverArrived: the broadcast fails with a refused connection, so the node
// never had the transaction. Whatever Settle answers first, the payment must end up settled
// once, and the relayer's nonce must not go to two transactions.
func TestSettleBroadcastNeverArrived(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("presented again", func(t *testing.T) {
		t.Parallel()
		env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
		req := env.Requirements(price, env.Seller.Address)
		p := payment(t, env, req)
		before := snapshot(t, env)
		chain.Set(quidtest.SendTransaction, quidtest.Fault{Err: quidtest.TransportError(), Times: 1})
		first, err := env.Facilitator.Settle(ctx, p, req)
		if err != nil && !errors.Is(err, facilitator.ErrUnavailable) {
			t.Fatal(err)
		}
		resp, err := settleUntilKnown(ctx, env, p, req)
		if err != nil || !resp.Success {
			t.Fatalf("after the failed broadcast (%+v): %+v %v", first, resp, err)
		}
		requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
		if first != nil && first.Transaction != "" && first.Transaction != resp.Transaction {
			t.Errorf("pending named %s, settled by %s", first.Transaction, resp.Transaction)
		}
		requireMoved(t, env, before, 1)
	})

	t.Run("another payment meanwhile", func(t *testing.T) {
		t.Parallel()
		env, chain := quidtest.NewFaultyEnv(t, quidtest.Options{Facilitator: shortReceipts})
		req := env.Requirements(price, env.Seller.Address)
		p1, p2 := payment(t, env, req), payment(t, env, req)
		before := snapshot(t, env)
		chain.Set(quidtest.SendTransaction, quidtest.Fault{Err: quidtest.TransportError(), Times: 1})
		first, err := env.Facilitator.Settle(ctx, p1, req)
		if err != nil && !errors.Is(err, facilitator.ErrUnavailable) {
			t.Fatal(err)
		}
		resp, err := env.Facilitator.Settle(ctx, p2, req)
		if err != nil {
			t.Fatal(err)
		}
		requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
		resp, err = settleUntilKnown(ctx, env, p1, req)
		if err != nil || !resp.Success {
			t.Fatalf("the payment whose broadcast never arrived (first answer %+v): %+v %v; want it settled", first, resp, err)
		}
		requireSettled(t, env, resp, env.Buyer.Address, env.Seller.Address, price)
		requireMoved(t, env, before, 2)
	})
}
