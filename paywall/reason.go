package paywall

import "github.com/quidpay/quid/x402"

// quid's own reason strings, for refusals the x402 protocol has no reason for. They travel in
// PaymentRequired.error (402) or in the JSON body of a 403 or 503, and all start with "quid_"
// so that clients of other stacks can tell them from the protocol's.
const (
	// A Quid-Quote header that does not decode or whose seal does not check out.
	ReasonQuoteInvalid x402.Reason = "quid_quote_invalid"
	// A quote presented after its expiry.
	ReasonQuoteExpired x402.Reason = "quid_quote_expired"
	// A quote presented on another route than the one it was made for, or a payment whose
	// nonce is not the quote's (wrong route, price or payee).
	ReasonQuoteMismatch x402.Reason = "quid_quote_mismatch"

	// A capability token that does not decode, is forged, or carries an unknown caveat.
	ReasonCapabilityInvalid x402.Reason = "quid_capability_invalid"
	// A capability token past its expiry.
	ReasonCapabilityExpired x402.Reason = "quid_capability_expired"
	// A capability token whose scope does not cover the request.
	ReasonCapabilityScope x402.Reason = "quid_capability_out_of_scope"
	// A capability token with no uses left.
	ReasonCapabilityUsedUp x402.Reason = "quid_capability_used_up"

	// Access policy refusals (403).
	ReasonPayerBlocked        x402.Reason = "quid_payer_blocked"
	ReasonPayerNotAllowed     x402.Reason = "quid_payer_not_allowed"
	ReasonRateLimited         x402.Reason = "quid_rate_limited"
	ReasonSpendLimit          x402.Reason = "quid_spend_limit_exceeded"
	ReasonInsufficientDeposit x402.Reason = "quid_insufficient_deposit"
	ReasonIdentityRefused     x402.Reason = "quid_identity_refused"

	// The price of a request could not be decided (503).
	ReasonPricingUnavailable x402.Reason = "quid_pricing_unavailable"
)
