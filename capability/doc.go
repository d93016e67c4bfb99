// Package capability mints and verifies quid capability tokens: macaroons a seller issues after
// a settled payment, so that the payer (or a sub-agent it hands the token to) may call again
// without paying until a caveat runs out.
//
// A token is a macaroon with first-party caveats only. Caveats are ANDed: attenuating a token
// (Attenuate) can only add caveats, so a holder can narrow a token (earlier expiry, narrower
// scope, fewer uses) without asking the seller, and never widen it. A caveat this package does
// not know makes the token invalid rather than being ignored.
//
// The package does no I/O: counting uses is the caller's job (an atomic counter per token id in
// the store), with the limit Verify returns. That count is shared by a token and all its
// attenuations, and the smallest uses caveat of the presented token caps it.
package capability
