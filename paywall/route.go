package paywall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/capability"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// route is a Route made ready to serve: prices parsed, extensions and disclosure rendered.
type route struct {
	Route
	// pattern names the route in records and scopes: "GET /path", "/path", or "" without a Path.
	pattern    string
	fixed      priced // Price
	known      priced // KnownPrice
	extensions x402.Object
	ids        *identifiers
	policy     *policy
	disclosure Disclosure
	extra      json.RawMessage // disclosure, rendered once
}

type priced struct {
	set    bool
	asset  evm.Asset
	amount evm.Amount
}

// policy is a Policy made ready to apply.
type policy struct {
	*Policy
	allow, block map[common.Address]bool
	spend        priced
	minBalance   priced
}

func (p *Paywall) compile(spec Route) (*route, error) {
	rt := &route{Route: spec, pattern: routePattern(spec.Method, spec.Path)}
	var err error
	if spec.Pricer == nil || spec.Price != "" {
		if rt.fixed, err = p.parsePrice(spec.Price); err != nil {
			return nil, fmt.Errorf("paywall: route price: %w", err)
		}
		if rt.fixed.amount.IsZero() && spec.Pricer == nil {
			return nil, errors.New("paywall: route price is zero; leave free routes unwrapped")
		}
	}
	if spec.KnownPrice != "" {
		if rt.known, err = p.parsePrice(spec.KnownPrice); err != nil {
			return nil, fmt.Errorf("paywall: route known price: %w", err)
		}
	}
	if _, ok := p.cfg.Facilitator.(Deferrer); spec.Settle == SettleDeferred && !ok {
		return nil, errors.New("paywall: a SettleDeferred route needs a facilitator that can defer (an in-process facilitator with a batch settler)")
	}
	if spec.Settle < SettleAfter || spec.Settle > SettleOnCommit {
		return nil, fmt.Errorf("paywall: unknown settle mode %d", spec.Settle)
	}
	if spec.Path != "" && !strings.HasPrefix(spec.Path, "/") {
		return nil, fmt.Errorf("paywall: route path %q must start with /", spec.Path)
	}
	if spec.Quote != nil {
		if len(p.cfg.Secret) == 0 {
			return nil, errors.New("paywall: a route offering quotes needs Config.Secret")
		}
		if spec.Path == "" {
			return nil, errors.New("paywall: a route offering quotes needs a Path, where buyers ask for them")
		}
	}
	if c := spec.Capability; c != nil {
		if len(p.cfg.Secret) == 0 || p.cfg.Uses == nil {
			return nil, errors.New("paywall: a route issuing capability tokens needs Config.Secret and Config.Uses")
		}
		for _, s := range c.Scope {
			if err := capability.ParsePattern(s); err != nil {
				return nil, fmt.Errorf("paywall: capability scope: %w", err)
			}
		}
		if rt.pattern != "" && len(c.Scope) == 0 {
			if err := capability.ParsePattern(rt.pattern); err != nil {
				return nil, fmt.Errorf("paywall: capability scope: %w", err)
			}
		}
	}
	for _, schema := range []json.RawMessage{spec.InputSchema, spec.OutputSchema} {
		if len(schema) > 0 && !json.Valid(schema) {
			return nil, errors.New("paywall: route input or output schema is not valid JSON")
		}
	}
	pol := spec.Policy
	if pol == nil {
		pol = p.cfg.Policy
	}
	if pol != nil {
		if rt.policy, err = p.compilePolicy(pol); err != nil {
			return nil, err
		}
	}
	rt.extensions = routeExtensions(spec)
	rt.ids = newIdentifiers(spec.PaymentIdentifier, p.cfg.Now)
	rt.disclosure = rt.disclose()
	if rt.extra, err = json.Marshal(rt.disclosure); err != nil {
		return nil, err
	}
	return rt, nil
}

func (p *Paywall) compilePolicy(pol *Policy) (*policy, error) {
	c := &policy{Policy: pol, allow: map[common.Address]bool{}, block: map[common.Address]bool{}}
	for _, a := range pol.Allow {
		c.allow[a] = true
	}
	for _, a := range pol.Block {
		c.block[a] = true
	}
	if pol.Rate.Requests < 0 || (pol.Rate.Requests > 0 && pol.Rate.Per <= 0) {
		return nil, errors.New("paywall: policy rate needs a positive Requests and Per")
	}
	var err error
	if pol.Spend.Max != "" {
		if p.cfg.Spend == nil || pol.Spend.Window <= 0 {
			return nil, errors.New("paywall: a spend limit needs Config.Spend and a positive Window")
		}
		if c.spend, err = p.parsePrice(pol.Spend.Max); err != nil {
			return nil, fmt.Errorf("paywall: spend limit: %w", err)
		}
	}
	if pol.MinBalance != "" {
		if p.cfg.Balances == nil {
			return nil, errors.New("paywall: a minimum balance needs Config.Balances")
		}
		if c.minBalance, err = p.parsePrice(pol.MinBalance); err != nil {
			return nil, fmt.Errorf("paywall: minimum balance: %w", err)
		}
	}
	return c, nil
}

func (p *Paywall) parsePrice(s string) (priced, error) {
	asset, amount, err := p.cfg.Assets.ParsePrice(p.cfg.ChainID, s)
	if err != nil {
		return priced{}, err
	}
	return priced{set: true, asset: asset, amount: amount}, nil
}

// routePattern names a route: "GET /path", "/path" for any method, "" without a path.
func routePattern(method, p string) string {
	if p == "" {
		return ""
	}
	if method == "" {
		return p
	}
	return strings.ToUpper(method) + " " + p
}

// matches reports whether a request's method and (cleaned) path fall under the route's pattern.
func (rt *route) matches(method, p string) bool {
	if rt.Path == "" || (rt.Method != "" && !strings.EqualFold(rt.Method, method)) {
		return false
	}
	prefix, wild := strings.CutSuffix(rt.Path, "*")
	if wild {
		return strings.HasPrefix(p, prefix)
	}
	return p == rt.Path
}

// cleanPath is the request's path with dot segments resolved, so that scopes and quotes cannot
// be escaped with "/a/../b".
func cleanPath(r *http.Request) string {
	p := r.URL.Path
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (rt *route) disclose() Disclosure {
	d := Disclosure{Settle: rt.Settle.String(), DynamicPrice: rt.Pricer != nil, Quotable: rt.Quote != nil, Terms: rt.Terms}
	if pol := rt.policy; pol != nil {
		l := &Limits{Requests: pol.Rate.Requests, PerSeconds: int64(pol.Rate.Per.Seconds()),
			Allowlist: len(pol.Allow) > 0, Identity: pol.Identity != nil}
		if pol.spend.set {
			l.SpendMax, l.SpendWindow = pol.spend.amount.String(), int64(pol.Spend.Window.Seconds())
		}
		if pol.minBalance.set {
			l.MinBalance = pol.minBalance.amount.String()
		}
		if *l != (Limits{}) {
			d.Limits = l
		}
	}
	if c := rt.Capability; c != nil {
		d.Capability = &CapabilityOffer{Header: HeaderCapability, TTLSeconds: int64(rt.capabilityTTL().Seconds()), Uses: c.Uses, Scope: c.Scope}
		if len(c.Scope) == 0 && rt.pattern != "" {
			d.Capability.Scope = []string{rt.pattern}
		}
	}
	return d
}

func (rt *route) capabilityTTL() time.Duration {
	if rt.Capability.TTL > 0 {
		return rt.Capability.TTL
	}
	return DefaultCapabilityTTL
}

// price decides what r costs: the quote's price, else the route's Pricer, else its fixed price
// (KnownPrice for known buyers). A nil Charge with no error means the request is free.
func (p *Paywall) price(r *http.Request, rt *route, quote *sealedQuote) (*Charge, error) {
	var pr priced
	extra := rt.extra
	switch {
	case quote != nil:
		asset, ok := p.cfg.Assets.Lookup(p.cfg.ChainID, quote.asset)
		if !ok {
			return nil, fmt.Errorf("%w: quoted asset %s is not registered", ErrPricing, quote.asset.Hex())
		}
		pr = priced{set: true, asset: asset, amount: quote.amount}
		d := rt.disclosure
		d.Quote = &QuoteTerms{ID: quote.id, ExpiresAt: quote.expires.Unix(), Nonce: hexNonce(quote.nonce)}
		var err error
		if extra, err = json.Marshal(d); err != nil {
			return nil, err
		}
	case rt.Pricer != nil || rt.known.set:
		buyer, err := p.buyer(r)
		if err != nil {
			return nil, err
		}
		if rt.Pricer == nil {
			pr = rt.fixed
			if buyer.Known {
				pr = rt.known
			}
			break
		}
		s, err := rt.Pricer.Price(r, buyer)
		if err != nil {
			if errors.Is(err, ErrPricing) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", ErrPricing, err)
		}
		if pr, err = p.parsePrice(s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPricing, err)
		}
	default:
		pr = rt.fixed
	}
	if pr.amount.IsZero() {
		return nil, nil
	}
	charge := &Charge{
		Asset:      pr.asset,
		Amount:     pr.amount,
		Resource:   x402.ResourceInfo{URL: resourceURL(r), Description: rt.Description, MimeType: rt.MimeType},
		MaxTimeout: p.cfg.MaxTimeout,
		Extensions: rt.extensions,
		Extra:      x402.Object{ExtraKey: extra},
		Route:      rt.pattern,
	}
	if quote != nil {
		charge.Nonce = &quote.nonce
	}
	return charge, nil
}

// buyer tells who r is from: the payer of its payment, else the Quid-Payer hint. A buyer is
// known when Records has a payment of it.
func (p *Paywall) buyer(r *http.Request) (Buyer, error) {
	var b Buyer
	if h := r.Header.Get(x402.HeaderPaymentSignature); h != "" {
		b.Address = payloadPayer(x402.DecodePaymentSignature(h))
	} else if h := r.Header.Get(x402.HeaderPaymentV1); h != "" {
		b.Address = payloadPayer(x402.DecodeXPayment(h))
	} else if h := strings.TrimSpace(r.Header.Get(HeaderPayer)); h != "" {
		if a, err := evm.ParseAddress(h); err == nil {
			b.Address = a
		}
	}
	if b.Address == (common.Address{}) || p.cfg.Records == nil {
		return b, nil
	}
	known, err := p.cfg.Records.Known(r.Context(), b.Address)
	if err != nil {
		return b, fmt.Errorf("%w: payer records: %v", ErrPricing, err)
	}
	b.Known = known
	return b, nil
}

// payloadPayer is the from address of an exact EVM payload; zero when there is none.
func payloadPayer(p *x402.PaymentPayload, err error) common.Address {
	if err != nil {
		return common.Address{}
	}
	ex, err := p.ExactEVM()
	if err != nil {
		return common.Address{}
	}
	a, err := evm.ParseAddress(ex.Authorization.From)
	if err != nil {
		return common.Address{}
	}
	return a
}

// payerAddress is a payment's payer as an address; zero for rails without one.
func payerAddress(pay Payment) common.Address {
	a, err := evm.ParseAddress(pay.Payer())
	if err != nil {
		return common.Address{}
	}
	return a
}

// admit applies the route's access policy to payer for charge. The returned function gives back
// what was counted against the payer's spend limit, for a payment that is not settled.
func (p *Paywall) admit(r *http.Request, rt *route, payer common.Address, charge *Charge) (refund func(), err error) {
	nothing := func() {}
	ctx := r.Context()
	pol := rt.policy
	if pol != nil && pol.block[payer] {
		return nothing, &AccessError{Reason: ReasonPayerBlocked}
	}
	if p.cfg.Records != nil && payer != (common.Address{}) {
		blocked, err := p.cfg.Records.Blocked(ctx, payer)
		if err != nil {
			return nothing, fmt.Errorf("%w: payer records: %v", ErrUnavailable, err)
		}
		if blocked {
			return nothing, &AccessError{Reason: ReasonPayerBlocked}
		}
	}
	if pol == nil {
		return nothing, nil
	}
	if len(pol.allow) > 0 && !pol.allow[payer] {
		return nothing, &AccessError{Reason: ReasonPayerNotAllowed}
	}
	if pol.Identity != nil {
		if err := pol.Identity(r, payer); err != nil {
			return nothing, &AccessError{Reason: ReasonIdentityRefused, Message: err.Error()}
		}
	}
	if pol.Rate.Requests > 0 {
		if wait, ok := p.rate.take(rt, payer, pol.Rate); !ok {
			return nothing, &AccessError{Reason: ReasonRateLimited, RetryAfter: wait}
		}
	}
	if pol.minBalance.set {
		bal, err := p.cfg.Balances.BalanceOf(ctx, pol.minBalance.asset.Address, payer)
		if err != nil {
			return nothing, fmt.Errorf("%w: balance: %v", ErrUnavailable, err)
		}
		if bal.Cmp(pol.minBalance.amount) < 0 {
			return nothing, &AccessError{Reason: ReasonInsufficientDeposit,
				Message: "this route needs a balance of at least " + pol.minBalance.asset.Format(pol.minBalance.amount)}
		}
	}
	// Only payments in the limit's asset count against it.
	if charge == nil || !pol.spend.set || charge.Asset.Address != pol.spend.asset.Address {
		return nothing, nil
	}
	window := p.cfg.Now().Truncate(pol.Spend.Window)
	ok, err := p.cfg.Spend.AddSpend(ctx, payer, window, charge.Amount, pol.spend.amount)
	if err != nil {
		return nothing, fmt.Errorf("%w: spend ledger: %v", ErrUnavailable, err)
	}
	if !ok {
		return nothing, &AccessError{Reason: ReasonSpendLimit,
			Message: "this payer's payments would exceed " + pol.spend.asset.Format(pol.spend.amount) + " in the current window"}
	}
	return func() {
		if err := p.cfg.Spend.RefundSpend(context.WithoutCancel(ctx), payer, window, charge.Amount); err != nil {
			p.log.Error("giving back an unsettled payment's spend", "payer", payer.Hex(), "err", err)
		}
	}, nil
}

// forbid answers a request refused by access policy (403) or whose policy could not be
// checked (503).
func (p *Paywall) forbid(w http.ResponseWriter, r *http.Request, rt *route, payer common.Address, err error) {
	w.Header().Set("Cache-Control", "no-store")
	var ae *AccessError
	if !errors.As(err, &ae) {
		p.log.Error("access policy unavailable", "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, "payment service unavailable")
		return
	}
	p.log.Warn("access refused", "payer", payer.Hex(), "route", rt.pattern, "reason", ae.Reason)
	p.recordRefusal(r, rt, payer, err, http.StatusForbidden)
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(max(time.Second, ae.RetryAfter.Round(time.Second))/time.Second), 10))
	}
	msg := ae.Message
	if msg == "" {
		msg = "access refused"
	}
	writeJSONReason(w, http.StatusForbidden, ae.Reason, msg)
}

// recordRefusal records a refused request for the admin.
func (p *Paywall) recordRefusal(r *http.Request, rt *route, payer common.Address, cause error, status int) {
	if p.cfg.Records == nil {
		return
	}
	reason := string(reasonFor(cause))
	var ae *AccessError
	if errors.As(cause, &ae) {
		reason = string(ae.Reason)
	}
	err := p.cfg.Records.RecordRefusal(context.WithoutCancel(r.Context()), store.Refusal{
		At: p.cfg.Now(), Payer: payer, Route: rt.recordName(r), Reason: reason, Status: status})
	if err != nil {
		p.log.Error("recording a refusal", "err", err)
	}
}

// recordName names the route in records: its pattern, else the request's path.
func (rt *route) recordName(r *http.Request) string {
	if rt.pattern != "" {
		return rt.pattern
	}
	return r.Method + " " + cleanPath(r)
}

// record records a settled (or queued) payment for the admin; status is the handler's.
func (p *Paywall) record(r *http.Request, rt *route, charge *Charge, pay Payment, receipt *Receipt, status int) {
	if p.cfg.Records == nil {
		return
	}
	err := p.cfg.Records.RecordPayment(context.WithoutCancel(r.Context()), store.SellerPayment{
		Key: pay.Key(), At: p.cfg.Now(), Payer: payerAddress(pay), Route: rt.recordName(r),
		Asset: charge.Asset.Address, Amount: charge.Amount, Tx: receipt.Transaction, Status: status,
	})
	if err != nil {
		p.log.Error("recording a payment", "payer", pay.Payer(), "err", err)
	}
}

// writeJSONReason writes {"error": msg, "reason": reason}.
func writeJSONReason(w http.ResponseWriter, status int, reason x402.Reason, msg string) {
	writeJSON(w, status, struct {
		Error  string      `json:"error"`
		Reason x402.Reason `json:"reason"`
	}{msg, reason})
}
