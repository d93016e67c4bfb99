package paywall

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/capability"
	"github.com/quidpay/quid/x402"
)

// HeaderCapability carries a capability token: set on a paid response when the route issues
// one, and accepted on later requests (as is "Authorization: Quid <token>").
const HeaderCapability = "Quid-Capability"

// DefaultCapabilityTTL is a capability token's lifetime unless CapabilityPolicy.TTL says
// otherwise.
const DefaultCapabilityTTL = time.Hour

// CapabilityPolicy makes a route issue a capability token (a macaroon, see package capability)
// after each settled payment: not for payments queued by SettleDeferred, which settle later.
// With SettleBefore the token is issued even when the handler then fails, so the payer can
// retry what it paid for. A request presenting a valid token skips the 402 while every
// caveat holds and a use is left: expiry, scope, uses and payer. Uses are counted in
// Config.Uses per token id, across every attenuation of it, and the smallest uses caveat of the
// presented token caps that shared count: a holder that used 3 of 10 and hands a sub-agent an
// attenuation with "uses 5" leaves it 2. The holder may attenuate the token for a sub-agent
// (narrower scope, earlier expiry, fewer uses); the paywall verifies attenuated tokens like the
// original, and since caveats only add up, no attenuation can widen one. A use is taken when a
// request is admitted on the token, whether or not the handler then succeeds.
//
// A token that is invalid (forged, expired, out of scope, used up, unknown caveat) is answered
// with the route's ordinary 402, its error naming the reason (ReasonCapability…), so the buyer
// can pay instead. Access policy applies to the token's payer as to a paying one.
type CapabilityPolicy struct {
	// TTL is how long a token is valid. Default: DefaultCapabilityTTL.
	TTL time.Duration
	// Uses is how many requests a token buys; 0 is as many as fit in TTL.
	Uses uint64
	// Scope are the patterns ("METHOD /path", a path ending in "*" matching every path it
	// prefixes) the token is good for. Default: the route's Method and Path, or the paid
	// request's path when the route has none.
	Scope []string
}

// capabilityToken returns the capability token r presents, "" when none.
func capabilityToken(r *http.Request) string {
	if t := strings.TrimSpace(r.Header.Get(HeaderCapability)); t != "" {
		return t
	}
	if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Quid") {
		return strings.TrimSpace(t)
	}
	return ""
}

// serveCapability serves r on a capability token when the token holds, the payer passes the
// access policy and a use is left. served reports that r was answered (served, refused by
// policy, or the store unavailable); otherwise err says why the token was not accepted and the
// request goes on to payment.
func (p *Paywall) serveCapability(w http.ResponseWriter, r *http.Request, rt *route, next http.Handler, token string) (served bool, err error) {
	if len(p.cfg.Secret) == 0 || p.cfg.Uses == nil {
		return false, &x402.Error{Reason: ReasonCapabilityInvalid, Message: "this seller issues no capability tokens"}
	}
	grant, err := p.keys.Verify(token, capability.Request{Method: r.Method, Path: cleanPath(r), Now: p.cfg.Now()})
	if err != nil {
		reason := ReasonCapabilityInvalid
		switch {
		case errors.Is(err, capability.ErrExpired):
			reason = ReasonCapabilityExpired
		case errors.Is(err, capability.ErrOutOfScope):
			reason = ReasonCapabilityScope
		}
		// The error names what failed, never the token.
		return false, &x402.Error{Reason: reason, Message: err.Error()}
	}
	if _, err := p.admit(r, rt, grant.Payer, nil); err != nil {
		p.forbid(w, r, rt, grant.Payer, err)
		return true, nil
	}
	// A token without a uses caveat is bounded by its expiry alone: there is nothing to count,
	// so it costs no write. Uses are counted from the first request carrying a uses caveat.
	if grant.Uses > 0 {
		ok, err := p.cfg.Uses.UseCapability(r.Context(), grant.ID, grant.Uses, grant.Latest)
		if err != nil {
			p.log.Error("capability use store unavailable", "err", err)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Cache-Control", "no-store")
			writeJSONError(w, http.StatusServiceUnavailable, "payment service unavailable")
			return true, nil
		}
		if !ok {
			return false, &x402.Error{Reason: ReasonCapabilityUsedUp}
		}
	}
	if p.tally != nil {
		p.tally.add(grant.Payer, p.cfg.Now())
	}
	p.log.Info("served on a capability token", "payer", grant.Payer.Hex(), "token", grant.ID.String(), "url", resourceURL(r))
	h := w.Header()
	h.Set("Cache-Control", "private")
	h.Add("Vary", "Quid-Capability, Authorization")
	next.ServeHTTP(w, r)
	return true, nil
}

// issue mints a capability token for payer into h, when the route issues them.
func (p *Paywall) issue(h http.Header, r *http.Request, rt *route, payer common.Address) {
	c := rt.Capability
	if c == nil || payer == (common.Address{}) {
		return
	}
	scope := c.Scope
	if len(scope) == 0 {
		scope = []string{rt.pattern}
		if rt.pattern == "" {
			scope = []string{r.Method + " " + cleanPath(r)}
		}
	}
	id, err := capability.NewID()
	if err != nil {
		p.log.Error("minting a capability token", "err", err)
		return
	}
	caveats := []capability.Caveat{
		capability.Payer(payer),
		capability.Expires(p.cfg.Now().Add(rt.capabilityTTL())),
		capability.Scope(scope...),
	}
	if c.Uses > 0 {
		caveats = append(caveats, capability.Uses(c.Uses))
	}
	token, err := p.keys.Mint(id, caveats...)
	if err != nil {
		// The payment stands; only the shortcut for later requests is lost.
		p.log.Error("minting a capability token", "err", err)
		return
	}
	h.Set(HeaderCapability, token)
}
