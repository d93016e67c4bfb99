package paywall

import "time"

// HeaderCapability carries a capability token: set on a paid response when the route issues
// one, and accepted on later requests (as is "Authorization: Quid <token>").
const HeaderCapability = "Quid-Capability"

// DefaultCapabilityTTL is a capability token's lifetime unless CapabilityPolicy.TTL says
// otherwise.
const DefaultCapabilityTTL = time.Hour

// CapabilityPolicy makes a route issue a capability token (a macaroon, see package capability)
// after each settled payment. A request presenting a valid token skips the 402 while every
// caveat holds and a use is left: expiry, scope, uses and payer. Uses are counted in
// Config.Uses, per token, across every attenuation of it. The holder may attenuate the token
// for a sub-agent; the paywall verifies attenuated tokens like the original.
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
