// Package evm owns quid's EVM cryptography and encodings: typed token amounts, the EIP-712 digest
// of EIP-3009 authorizations with cached domain separators, signing with v = 27/28, recovery with
// low-s enforcement, the calldata of the token calls quid makes (single and through
// QuidBatchSettler, whose per-item outcomes it decodes), and the registry of assets whose
// decimals and EIP-712 domains quid trusts.
//
// It performs no network I/O; talking to a chain is the facilitator's job. It never logs and
// never stores a private key.
package evm
