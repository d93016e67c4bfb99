package paywall

import (
	"context"
	"errors"
	"net/http"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// Policy decides who may buy a route. It is applied once the payer is known — after the payment
// is decoded or the capability token verified, and before anything is verified or settled — so
// a refused payer's payment is never settled. Refusals are 403 with a JSON body
// {"error": message, "reason": quid reason}, distinct from 402.
type Policy struct {
	// Allow, when not empty, admits only these payers.
	Allow []common.Address
	// Block refuses these payers, as do payers blocked in Config.Records.
	Block []common.Address
	// Rate caps each payer's requests. It is a token bucket held in this process: behind a
	// load balancer each instance allows the rate on its own.
	Rate Rate
	// Spend caps each payer's payments per window, across every instance sharing
	// Config.Spend.
	Spend SpendLimit
	// MinBalance, a price such as "$5", refuses payers holding less of the route's asset on
	// chain (their deposit), read through Config.Balances. For expensive routes, where a payer
	// unable to afford a series of calls should be turned away early.
	MinBalance string
	// Identity checks the payer's identity or metadata, e.g. a signed Sign-In-With-X header.
	// An error refuses the request with ReasonIdentityRefused and the error's text.
	Identity func(r *http.Request, payer common.Address) error
}

// Rate is a request rate: Requests per Per, with bursts of up to Requests. Zero is unlimited.
type Rate struct {
	Requests int
	Per      time.Duration
}

// SpendLimit caps what one payer may pay in a fixed window (the clock truncated to Window).
// Zero Max is unlimited. A payment counts from the moment it is admitted and is given back if it
// is not settled.
type SpendLimit struct {
	Max    string
	Window time.Duration
}

// BalanceChecker reads a payer's balance of an asset, for Policy.MinBalance.
type BalanceChecker interface {
	BalanceOf(ctx context.Context, asset, owner common.Address) (evm.Amount, error)
}

// AccessError is a refusal by access policy: 403 with Reason.
type AccessError struct {
	Reason  x402.Reason
	Message string
	// RetryAfter, when set, says when the payer may try again (rate limits).
	RetryAfter time.Duration
}

func (e *AccessError) Error() string {
	if e.Message == "" {
		return "paywall: access refused: " + string(e.Reason)
	}
	return "paywall: access refused: " + string(e.Reason) + ": " + e.Message
}

// Is makes errors.Is(err, ErrForbidden) true for every AccessError.
func (e *AccessError) Is(target error) bool { return target == ErrForbidden }

// ErrForbidden matches every refusal by access policy (see AccessError).
var ErrForbidden = errors.New("paywall: access refused")

// ChainBalances reads balances from a chain with balanceOf, at the latest block.
// *ethclient.Client satisfies ethereum.ContractCaller.
func ChainBalances(c ethereum.ContractCaller) BalanceChecker { return chainBalances{c} }

type chainBalances struct{ c ethereum.ContractCaller }

var _ BalanceChecker = chainBalances{}

func (b chainBalances) BalanceOf(ctx context.Context, asset, owner common.Address) (evm.Amount, error) {
	ret, err := b.c.CallContract(ctx, ethereum.CallMsg{To: &asset, Data: evm.BalanceOfCalldata(owner)}, nil)
	if err != nil {
		return evm.Amount{}, err
	}
	return evm.DecodeUint256(ret)
}
