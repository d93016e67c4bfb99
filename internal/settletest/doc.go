// Package settletest holds the settlement pipeline's system tests: several facilitators sharing
// one PostgreSQL, payers racing their own balance, and the benchmarks of settlement throughput.
// It has no code of its own.
package settletest
