package facilitator

import (
	"context"
	"fmt"
	"strings"
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
	// version is the payload's x402 version; answers name the network in its terms.
	version int
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
	if p != nil {
		pay.version = p.X402Version
	}
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
	if err != nil || amount.IsZero() {
		return pay, x402.Errorf(x402.ReasonInvalidPaymentRequirements, "amount must be a positive integer"), nil
	}
	if req.MaxTimeoutSeconds <= 0 || req.MaxTimeoutSeconds > maxTimeoutSeconds {
		return pay, x402.Errorf(x402.ReasonInvalidPaymentRequirements, "maxTimeoutSeconds must be between 1 and %d", maxTimeoutSeconds), nil
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
	if isContract, err := f.hasCode(ctx, asset); err != nil {
		return pay, nil, err
	} else if !isContract {
		return pay, &x402.Error{Reason: x402.ReasonAssetNotContract}, nil
	}
	if simulate {
		if _, err := f.cfg.Chain.CallContract(ctx, f.transferCall(pay), nil); err != nil {
			if !isRejection(err) {
				return pay, nil, fmt.Errorf("%w: eth_call: %v", ErrUnavailable, err)
			}
			perr, err := f.diagnose(ctx, pay, err)
			return pay, perr, err // perr nil: valid from the next block on
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
// it knows: whether it implements EIP-3009, whether the nonce is spent, its domain, the balance,
// and finally what its revert said. A question the chain does not answer makes the whole
// diagnosis ErrUnavailable: a guessed reason would be a definitive refusal of a payment that may
// be fine.
func (f *Facilitator) diagnose(ctx context.Context, pay *exactPayment, simErr error) (*x402.Error, error) {
	call := func(data []byte) ([]byte, bool, error) {
		ret, err := f.cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &pay.asset, Data: data}, nil)
		switch {
		case err == nil:
			return ret, true, nil
		case isRejection(err):
			return nil, false, nil // the token reverted: it does not answer this question
		}
		return nil, false, fmt.Errorf("%w: diagnosing a failed simulation: %v", ErrUnavailable, err)
	}
	ret, ok, err := call(evm.AuthorizationStateCalldata(pay.auth.From, pay.auth.Nonce))
	if err != nil {
		return nil, err
	}
	used, decodeErr := evm.DecodeBool(ret)
	switch {
	case !ok || decodeErr != nil:
		return x402.Errorf(x402.ReasonExactEIP3009Unsupported, "the token does not answer authorizationState"), nil
	case used:
		return &x402.Error{Reason: x402.ReasonExactNonceUsed}, nil
	}
	if ret, ok, err := call(evm.SelectorName[:]); err != nil {
		return nil, err
	} else if name, derr := evm.DecodeString(ret); ok && derr == nil && name != pay.domain.Name {
		return x402.Errorf(x402.ReasonExactTokenNameMismatch, "token name is %q", name), nil
	}
	if ret, ok, err := call(evm.SelectorVersion[:]); err != nil {
		return nil, err
	} else if v, derr := evm.DecodeString(ret); ok && derr == nil && v != pay.domain.Version {
		return x402.Errorf(x402.ReasonExactTokenVersionMismatch, "token version is %q", v), nil
	}
	if ret, ok, err := call(evm.BalanceOfCalldata(pay.auth.From)); err != nil {
		return nil, err
	} else if bal, derr := evm.DecodeUint256(ret); ok && derr == nil && bal.Cmp(pay.auth.Value) < 0 {
		return &x402.Error{Reason: x402.ReasonExactInsufficientBalance}, nil
	}
	// The token checks the validity window against the block's timestamp, which can trail the
	// clock the window was checked against here: say so in the protocol's terms.
	msg := revertMessage(simErr)
	switch {
	case strings.Contains(msg, "not yet valid") && pay.auth.ValidAfter <= unix(f.now()):
		// Nothing else is wrong: the head block is merely stamped no later than validAfter,
		// and the next block, stamped later, accepts the transfer.
		return nil, nil
	case strings.Contains(msg, "not yet valid"):
		return x402.Errorf(x402.ReasonExactValidAfter, "the token says: %s", msg), nil
	case strings.Contains(msg, "expired"):
		return x402.Errorf(x402.ReasonExactValidBefore, "the token says: %s", msg), nil
	}
	return x402.Errorf(x402.ReasonExactSimulationFailed, "%s", msg), nil
}

// maxTimeoutSeconds bounds the maxTimeoutSeconds quid accepts in requirements (a week): far
// beyond any real route, far below where time arithmetic overflows.
const maxTimeoutSeconds = 7 * 24 * 3600

// maxKnownContracts bounds the cache of assets known to have code.
const maxKnownContracts = 1024

// hasCode reports whether asset is a contract. A yes is remembered: since EIP-6780 code cannot
// leave an address after the transaction that created it, so only a no is asked again.
func (f *Facilitator) hasCode(ctx context.Context, asset common.Address) (bool, error) {
	if _, ok := f.contracts.Load(asset); ok {
		return true, nil
	}
	code, err := f.cfg.Chain.CodeAt(ctx, asset, nil)
	if err != nil {
		return false, fmt.Errorf("%w: eth_getCode: %v", ErrUnavailable, err)
	}
	if len(code) == 0 {
		return false, nil
	}
	if f.knownContracts.Add(1) <= maxKnownContracts {
		f.contracts.Store(asset, struct{}{})
	}
	return true, nil
}
