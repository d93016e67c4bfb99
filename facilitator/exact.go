package facilitator

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// exactPayment is an exact-scheme payment whose wire form has been parsed and checked.
type exactPayment struct {
	auth   evm.Authorization
	sig    evm.Signature
	asset  common.Address
	domain evm.Domain
	key    store.Key
	parsed bool // auth holds the payload's authorization
}

func (e *exactPayment) payer() string {
	if e == nil || !e.parsed {
		return ""
	}
	return e.auth.From.Hex()
}

// verify runs the checks of the exact EVM scheme in the order of the reference facilitators, so
// a payment that fails several gets the same reason from quid as from them. It returns the parsed
// payment (possibly partial), a protocol failure, or an infrastructure error.
func (f *Facilitator) verify(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements, simulate bool) (*exactPayment, *x402.Error, error) {
	pay := &exactPayment{}
	if p == nil || p.Accepted == nil {
		return pay, &x402.Error{Reason: x402.ReasonInvalidPayload, Message: "missing accepted requirements"}, nil
	}
	if p.X402Version != x402.V1 && p.X402Version != x402.V2 {
		return pay, &x402.Error{Reason: x402.ReasonInvalidVersion}, nil
	}
	if p.Accepted.Scheme != x402.SchemeExact || req.Scheme != x402.SchemeExact {
		return pay, &x402.Error{Reason: x402.ReasonExactScheme}, nil
	}
	name, okName := req.Extra.String("name")
	version, okVersion := req.Extra.String("version")
	if !okName || !okVersion {
		return pay, &x402.Error{Reason: x402.ReasonExactMissingDomain}, nil
	}
	if p.Accepted.Network != req.Network {
		return pay, &x402.Error{Reason: x402.ReasonExactNetworkMismatch}, nil
	}
	if req.Network != f.network {
		return pay, x402.Errorf(x402.ReasonInvalidNetwork, "this facilitator settles on %s", f.network), nil
	}
	// The seller's requirements must be well formed before the buyer's payload is judged by them.
	asset, err := evm.ParseAddress(req.Asset)
	if err != nil {
		return pay, x402.Errorf(x402.ReasonInvalidPaymentRequirements, "asset: %v", err), nil
	}
	payTo, err := evm.ParseAddress(req.PayTo)
	if err != nil {
		return pay, x402.Errorf(x402.ReasonInvalidPaymentRequirements, "payTo: %v", err), nil
	}
	amount, err := evm.ParseAmount(req.Amount)
	if err != nil || req.MaxTimeoutSeconds <= 0 {
		return pay, x402.Errorf(x402.ReasonInvalidPaymentRequirements, "amount and maxTimeoutSeconds must be positive integers"), nil
	}

	ex, err := p.ExactEVM()
	if err != nil {
		return pay, x402.Errorf(x402.ReasonExactPayload, "%v", err), nil
	}
	if pay.auth, err = evm.ParseAuthorization(ex.Authorization); err != nil {
		return pay, x402.Errorf(x402.ReasonExactPayload, "%v", err), nil
	}
	pay.parsed = true
	if pay.sig, err = evm.ParseSignature(ex.Signature); err != nil {
		return pay, x402.Errorf(x402.ReasonExactSignature, "%v", err), nil
	}
	pay.asset = asset
	pay.domain = evm.Domain{Name: name, Version: version, ChainID: f.cfg.ChainID, VerifyingContract: asset}
	pay.key = store.Key(pay.auth.ClaimKey(f.cfg.ChainID, asset))

	signer, err := evm.Recover(pay.auth.Digest(pay.domain), pay.sig)
	if err != nil {
		return pay, x402.Errorf(x402.ReasonExactSignature, "%v", err), nil
	}
	if signer != pay.auth.From {
		return pay, x402.Errorf(x402.ReasonExactSignature, "signature is not from authorization.from"), nil
	}
	if pay.auth.To != payTo {
		return pay, &x402.Error{Reason: x402.ReasonExactRecipientMismatch}, nil
	}
	now := f.now()
	if pay.auth.ValidBefore < unix(now.Add(validBeforeMargin)) {
		return pay, x402.Errorf(x402.ReasonExactValidBefore, "authorization expires too soon"), nil
	}
	limit := now.Add(time.Duration(req.MaxTimeoutSeconds)*time.Second + f.cfg.ClockSkew)
	if pay.auth.ValidBefore > unix(limit) {
		return pay, x402.Errorf(x402.ReasonExactValidBefore, "authorization lives longer than maxTimeoutSeconds allows"), nil
	}
	if pay.auth.ValidAfter > unix(now) {
		return pay, x402.Errorf(x402.ReasonExactValidAfter, "authorization is not valid yet"), nil
	}
	if pay.auth.Value.Cmp(amount) != 0 {
		return pay, x402.Errorf(x402.ReasonExactValueMismatch, "authorization value %s, required %s", pay.auth.Value, amount), nil
	}
	code, err := f.cfg.Chain.CodeAt(ctx, asset, nil)
	if err != nil {
		return pay, nil, fmt.Errorf("%w: eth_getCode: %v", ErrUnavailable, err)
	}
	if len(code) == 0 {
		return pay, &x402.Error{Reason: x402.ReasonAssetNotContract}, nil
	}
	if simulate {
		if _, err := f.cfg.Chain.CallContract(ctx, f.transferCall(pay), nil); err != nil {
			if !isRejection(err) {
				return pay, nil, fmt.Errorf("%w: eth_call: %v", ErrUnavailable, err)
			}
			return pay, f.diagnose(ctx, pay, err), nil
		}
	}
	return pay, nil, nil
}

func unix(t time.Time) uint64 {
	if s := t.Unix(); s > 0 {
		return uint64(s)
	}
	return 0
}

func (f *Facilitator) transferCall(pay *exactPayment) ethereum.CallMsg {
	return ethereum.CallMsg{
		From: f.Relayer(),
		To:   &pay.asset,
		Data: evm.TransferWithAuthorizationCalldata(&pay.auth, pay.sig),
	}
}

// diagnose turns a failed simulation into the most specific reason, by asking the token what
// it knows: whether it implements EIP-3009, whether the nonce is spent, its domain, the balance.
func (f *Facilitator) diagnose(ctx context.Context, pay *exactPayment, simErr error) *x402.Error {
	call := func(data []byte) ([]byte, error) {
		return f.cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &pay.asset, Data: data}, nil)
	}
	if ret, err := call(evm.AuthorizationStateCalldata(pay.auth.From, pay.auth.Nonce)); err != nil {
		return x402.Errorf(x402.ReasonExactEIP3009Unsupported, "authorizationState: %s", revertMessage(err))
	} else if used, err := evm.DecodeBool(ret); err != nil {
		return x402.Errorf(x402.ReasonExactEIP3009Unsupported, "authorizationState: %v", err)
	} else if used {
		return &x402.Error{Reason: x402.ReasonExactNonceUsed}
	}
	if ret, err := call(evm.SelectorName[:]); err == nil {
		if name, err := evm.DecodeString(ret); err == nil && name != pay.domain.Name {
			return x402.Errorf(x402.ReasonExactTokenNameMismatch, "token name is %q", name)
		}
	}
	if ret, err := call(evm.SelectorVersion[:]); err == nil {
		if v, err := evm.DecodeString(ret); err == nil && v != pay.domain.Version {
			return x402.Errorf(x402.ReasonExactTokenVersionMismatch, "token version is %q", v)
		}
	}
	if ret, err := call(evm.BalanceOfCalldata(pay.auth.From)); err == nil {
		if bal, err := evm.DecodeUint256(ret); err == nil && bal.Cmp(pay.auth.Value) < 0 {
			return &x402.Error{Reason: x402.ReasonExactInsufficientBalance}
		}
	}
	return x402.Errorf(x402.ReasonExactSimulationFailed, "%s", revertMessage(simErr))
}
