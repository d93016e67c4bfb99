// Package x402 owns the x402 wire format: the v1 and v2 JSON types, the base64 header codecs,
// the reason strings, CAIP-2 and v1 network names, and the rule that matches a buyer's accepted
// requirements against the seller's.
//
// It does no I/O, keeps no state and trusts nothing it decodes: every decoder bounds its input and
// reports malformed data as an *Error carrying the protocol's reason string. Scheme-specific
// cryptography (EIP-712, signatures) belongs to package evm.
package x402
