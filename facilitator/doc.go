// Package facilitator verifies and settles x402 payments on an EVM chain so that sellers never
// touch chain infrastructure: the Facilitator type for in-process use, Handler for its HTTP API
// (POST /verify, POST /settle, GET /supported, GET /discovery/resources, GET /healthz), and
// Client to call a remote one. Settlements are persisted as a state machine in a Store and
// reconciled with the chain; deferred payments are settled many per transaction by a batch
// worker.
//
// It never trusts requirements from a payload (the seller's own requirements are checked), never
// broadcasts one authorization twice, and never logs keys or signatures.
package facilitator
