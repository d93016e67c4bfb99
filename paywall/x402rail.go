package paywall

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// x402Rail accepts x402 exact payments (v2 PAYMENT-SIGNATURE and v1 X-PAYMENT) through a
// facilitator.
type x402Rail struct {
	cfg *Config
}

var _ Rail = (*x402Rail)(nil)

// requirements rebuilds the route's terms. They are deterministic, so the buyer's retry matches
// the 402 it was answered with. They hold what the payment binds; the disclosure (charge.Extra)
// is added only to what is offered, so a buyer that leaves it out of its echo still matches.
func (x *x402Rail) requirements(charge *Charge) x402.PaymentRequirements {
	extra := x402.Object{}
	extra.SetString("name", charge.Asset.Name)
	extra.SetString("version", charge.Asset.Version)
	return x402.PaymentRequirements{
		Scheme:            x402.SchemeExact,
		Network:           x402.EIP155(x.cfg.ChainID),
		Amount:            charge.Amount.String(),
		Asset:             charge.Asset.Address.Hex(),
		PayTo:             x.cfg.PayTo.Hex(),
		MaxTimeoutSeconds: int64(charge.MaxTimeout / time.Second),
		Extra:             extra,
	}
}

// offered is requirements with the route's disclosure in extra, as the 402 offers them.
func (x *x402Rail) offered(charge *Charge) x402.PaymentRequirements {
	req := x.requirements(charge)
	for k, v := range charge.Extra {
		if _, core := req.Extra[k]; !core {
			req.Extra[k] = v
		}
	}
	return req
}

// Offer implements Rail: the PAYMENT-REQUIRED header, mirrored in the body.
func (x *x402Rail) Offer(r *http.Request, charge *Charge, cause error, ch *Challenge) error {
	req := x.offered(charge)
	pr := x402.PaymentRequired{
		X402Version: x402.V2,
		Error:       string(reasonFor(cause)),
		Resource:    &charge.Resource,
		Accepts:     []x402.PaymentRequirements{req},
		Extensions:  charge.Extensions,
	}
	header, err := x402.EncodeHeader(pr)
	if err != nil {
		return err
	}
	ch.Header.Set(x402.HeaderPaymentRequired, header)
	if ch.Body != nil {
		return nil
	}
	if x.cfg.V1Body {
		v1, ok := req.ToV1(charge.Resource)
		if !ok {
			return fmt.Errorf("network %s has no x402 v1 name", req.Network)
		}
		errText := x402.V1ErrorPaymentRequired
		if cause != nil {
			errText = string(reasonFor(cause))
		}
		ch.Body, err = x402.Marshal(x402.V1PaymentRequired{X402Version: x402.V1, Error: errText, Accepts: []x402.V1Requirements{v1}})
		return err
	}
	ch.Body, err = x402.Marshal(pr)
	return err
}

// reasonFor words a refusal in x402 reason strings.
func reasonFor(cause error) x402.Reason {
	var xe *x402.Error
	switch {
	case cause == nil:
		return x402.ReasonPaymentRequired
	case errors.As(cause, &xe):
		return xe.Reason
	case errors.Is(cause, ErrReplayed):
		return x402.ReasonExactNonceUsed
	}
	return x402.ReasonPaymentRequired
}

// Payment implements Rail.
func (x *x402Rail) Payment(r *http.Request, charge *Charge) (Payment, error) {
	var p *x402.PaymentPayload
	var err error
	if h := r.Header.Get(x402.HeaderPaymentSignature); h != "" {
		p, err = x402.DecodePaymentSignature(h)
	} else if h := r.Header.Get(x402.HeaderPaymentV1); h != "" {
		p, err = x402.DecodeXPayment(h)
		if err == nil {
			p.Resource = &charge.Resource
		}
	} else {
		return nil, ErrNoCredential
	}
	if err != nil {
		return nil, err
	}
	req := x.requirements(charge)
	if !x402.Match(p.X402Version, req, *p.Accepted) {
		return nil, &x402.Error{Reason: x402.ReasonNoMatch}
	}
	ex, err := p.ExactEVM()
	if err != nil {
		return nil, err
	}
	auth, err := evm.ParseAuthorization(ex.Authorization)
	if err != nil {
		return nil, &x402.Error{Reason: x402.ReasonExactPayload, Message: err.Error()}
	}
	if charge.Nonce != nil && !hmac.Equal(auth.Nonce[:], charge.Nonce[:]) {
		return nil, &x402.Error{Reason: ReasonQuoteMismatch, Message: "the authorization's nonce is not the quote's"}
	}
	return &x402Payment{
		rail:    x,
		payload: p,
		req:     req,
		key:     store.Key(auth.ClaimKey(x.cfg.ChainID, charge.Asset.Address)),
		expires: time.Unix(int64(min(auth.ValidBefore, 1<<62)), 0),
		payer:   auth.From.Hex(),
	}, nil
}

type x402Payment struct {
	rail    *x402Rail
	payload *x402.PaymentPayload
	req     x402.PaymentRequirements
	key     store.Key
	expires time.Time
	payer   string
}

func (p *x402Payment) Key() store.Key     { return p.key }
func (p *x402Payment) Expires() time.Time { return p.expires }
func (p *x402Payment) Payer() string      { return p.payer }

// deferrable is a Payment that can be queued for batch settlement.
type deferrable interface {
	// Defer verifies and queues the payment; false with no error means the payer is at its
	// credit cap and the payment must be settled now.
	Defer(ctx context.Context) (bool, error)
	Release(ctx context.Context) error
	Cancel(ctx context.Context) error
}

var _ deferrable = (*x402Payment)(nil)

// Defer implements deferrable.
func (p *x402Payment) Defer(ctx context.Context) (bool, error) {
	d, ok := p.rail.cfg.Facilitator.(Deferrer)
	if !ok {
		return false, nil
	}
	v, err := d.Defer(ctx, p.payload, p.req)
	switch {
	case err != nil:
		return false, fmt.Errorf("%w: defer: %v", ErrUnavailable, err)
	case v.IsValid:
		return true, nil
	case v.InvalidReason == x402.ReasonDeferralLimit:
		return false, nil
	}
	return false, &x402.Error{Reason: v.InvalidReason, Message: v.InvalidMessage}
}

// Release implements deferrable.
func (p *x402Payment) Release(ctx context.Context) error {
	return p.rail.cfg.Facilitator.(Deferrer).Release(ctx, p.key)
}

// Cancel implements deferrable.
func (p *x402Payment) Cancel(ctx context.Context) error {
	_, err := p.rail.cfg.Facilitator.(Deferrer).Cancel(ctx, p.key)
	return err
}

// Verify implements Payment.
func (p *x402Payment) Verify(ctx context.Context) error {
	v, err := p.rail.cfg.Facilitator.Verify(ctx, p.payload, p.req)
	if err != nil {
		return fmt.Errorf("%w: verify: %v", ErrUnavailable, err)
	}
	if !v.IsValid {
		return &x402.Error{Reason: v.InvalidReason, Message: v.InvalidMessage}
	}
	return nil
}

// Settle implements Payment. The receipt header is PAYMENT-RESPONSE for v2 buyers and
// X-PAYMENT-RESPONSE for v1 buyers.
func (p *x402Payment) Settle(ctx context.Context) (*Receipt, error) {
	s, err := p.rail.cfg.Facilitator.Settle(ctx, p.payload, p.req)
	if err != nil {
		return nil, err
	}
	name := x402.HeaderPaymentResponse
	if p.payload.X402Version == x402.V1 {
		name = x402.HeaderPaymentV1Response
	}
	value, err := x402.EncodeHeader(s)
	if err != nil {
		return nil, err
	}
	receipt := &Receipt{
		Settled: s.Success,
		Pending: !s.Success && s.ErrorReason == x402.ReasonSettlementPending,
		// The facilitator names the transaction of an authorization it already settled.
		AlreadySettled: !s.Success && s.ErrorReason == x402.ReasonExactNonceUsed && s.Transaction != "",
		Transaction:    s.Transaction,
		Reason:         string(s.ErrorReason),
		Header:         http.Header{},
	}
	receipt.Header.Set(name, value)
	return receipt, nil
}
