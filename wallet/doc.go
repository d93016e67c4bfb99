// Package wallet is the buyer's side of quid: an agent's key and an http.RoundTripper that meets
// a 402, checks the price against the owner's limits, pays with an EIP-3009 authorization, and
// retries exactly once.
//
// Amounts and EIP-712 domains come from a trusted asset registry, never from the server that
// asks to be paid. Keys are never logged or written anywhere by this package.
package wallet
