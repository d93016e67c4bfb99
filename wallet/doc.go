// Package wallet is the buyer's side of quid: an agent's key and an http.RoundTripper that meets
// a 402, checks the price against the owner's policy, pays with an EIP-3009 authorization, and
// retries exactly once.
//
// A Policy (budgets per hour, day and week; caps per payment, payee and host; allow- and
// blocklists; approvals; a duplicate window; preferences) is enforced through a Ledger in one
// atomic step per payment, so it holds across goroutines and, with a *store.DB, across
// processes. Delegations hand sub-agents child budgets that count against every ancestor.
// Every decision is journaled, hash-chained, with its business context (Intent).
//
// Amounts and EIP-712 domains come from a trusted asset registry, never from the server that
// asks to be paid. Keys and signatures are never logged, journaled or written anywhere by this
// package except the key files it is asked to write.
package wallet
