package settletest_test

import (
	"context"
	"testing"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// benchEnv is a devnet whose blocks may run ahead of the clock (a benchmark mines far more than
// a block a second) and a facilitator with a batch settler on an in-memory store.
func benchEnv(b *testing.B) (*quidtest.Env, x402.PaymentRequirements) {
	env := quidtest.NewEnv(b, quidtest.Options{
		Devnet: devnet.Config{MaxTimestampLead: -1},
		Facilitator: func(c *facilitator.Config) {
			c.BatchSettler = devnet.BatchSettlerAddress
			c.MaxDeferred = evm.NewAmount(1 << 50)
		},
	})
	req := env.Requirements(1000, env.Seller.Address)
	req.MaxTimeoutSeconds = 7 * 24 * 3600
	return env, req
}

// BenchmarkSettleOneByOne settles payments one transaction each, sequentially.
func BenchmarkSettleOneByOne(b *testing.B) {
	env, req := benchEnv(b)
	payloads := make([]*x402.PaymentPayload, b.N)
	for i := range payloads {
		key := env.Chain.Accounts()[4+i%5].Key
		payloads[i] = quidtest.Payload(b, key, env.Token.Domain(), quidtest.Authorization(b, key, req), req)
	}
	b.ResetTimer()
	for _, p := range payloads {
		if s, err := env.Facilitator.Settle(context.Background(), p, req); err != nil || !s.Success {
			b.Fatal(s, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}

// BenchmarkSettleBatched defers payments and settles them in batches of 50.
func BenchmarkSettleBatched(b *testing.B) {
	env, req := benchEnv(b)
	ctx := context.Background()
	for i := range b.N {
		key := env.Chain.Accounts()[4+i%5].Key
		auth := quidtest.Authorization(b, key, req)
		p := quidtest.Payload(b, key, env.Token.Domain(), auth, req)
		if v, err := env.Facilitator.Defer(ctx, p, req); err != nil || !v.IsValid {
			b.Fatal(v, err)
		}
		env.Facilitator.Release(ctx, store.Key(auth.ClaimKey(env.Chain.ChainID(), env.Token.Address)))
	}
	b.ResetTimer()
	for settled := 0; settled < b.N; {
		n, err := env.Facilitator.SettleQueued(ctx)
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
		settled += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}
