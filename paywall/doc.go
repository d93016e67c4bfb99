// Package paywall is the seller's side of quid: HTTP middleware that puts a price on a route,
// answers unpaid requests with 402 and the terms of every rail it accepts, verifies what comes
// back, claims it so it is used once, and serves only what is paid.
//
// By default the handler's response is buffered and written only after settlement succeeds; a
// handler answering 400 or above is passed through and nothing is charged. The paywall never
// trusts terms sent by a buyer: requirements are rebuilt from the route on every request.
//
// Beyond a fixed price, a route can price each request (Pricer, PricingHook, KnownPrice), offer
// quotes bound to the payment's EIP-3009 nonce (QuotePolicy, QuoteHandler), refuse payers by
// policy with 403 before anything is settled (Policy), issue capability tokens that skip the 402
// for a while (CapabilityPolicy), disclose its terms before payment (Terms, Disclosure,
// Discovery) and settle at the point a streamed response commits (SettleOnCommit). Payments,
// refusals and payer records go to Config.Records for the seller's admin.
package paywall
