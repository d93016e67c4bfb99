package evm

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// This file is compiled into package evm for tests only. It holds the independent oracle the
// EIP-712 tests compare against, go-ethereum's generic typed-data hasher, and exports it (and a
// few internals) to the external test package.

// OracleDomain is an EIP-712 domain as the wire and wallets write it: strings and a chain id.
type OracleDomain struct {
	Name, Version     string
	ChainID           int64
	VerifyingContract string
}

// OracleAuthorization is an EIP-3009 authorization as the x402 wire writes it.
type OracleAuthorization struct {
	From, To, Value, ValidAfter, ValidBefore, Nonce string
}

// OracleTypedData builds the typed data a generic EIP-712 signer hashes for an EIP-3009
// authorization, from strings only, so that it shares no code with Domain or Authorization.
func OracleTypedData(d OracleDomain, a OracleAuthorization) apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"},
				{Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"},
				{Name: "verifyingContract", Type: "address"},
			},
			"TransferWithAuthorization": {
				{Name: "from", Type: "address"},
				{Name: "to", Type: "address"},
				{Name: "value", Type: "uint256"},
				{Name: "validAfter", Type: "uint256"},
				{Name: "validBefore", Type: "uint256"},
				{Name: "nonce", Type: "bytes32"},
			},
		},
		PrimaryType: "TransferWithAuthorization",
		Domain: apitypes.TypedDataDomain{
			Name:              d.Name,
			Version:           d.Version,
			ChainId:           (*math.HexOrDecimal256)(big.NewInt(d.ChainID)),
			VerifyingContract: d.VerifyingContract,
		},
		Message: apitypes.TypedDataMessage{
			"from":        a.From,
			"to":          a.To,
			"value":       a.Value,
			"validAfter":  a.ValidAfter,
			"validBefore": a.ValidBefore,
			"nonce":       a.Nonce,
		},
	}
}

// OracleDigest returns the domain separator and the digest go-ethereum's apitypes computes.
func OracleDigest(tb testing.TB, d OracleDomain, a OracleAuthorization) (separator, digest [32]byte) {
	tb.Helper()
	td := OracleTypedData(d, a)
	sep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		tb.Fatalf("apitypes domain: %v", err)
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		tb.Fatalf("apitypes digest: %v", err)
	}
	return [32]byte(sep), [32]byte(h)
}

// ComputeSeparator exposes the uncached separator computation.
func ComputeSeparator(d Domain) [32]byte { return d.computeSeparator() }

// SeparatorCached reports whether d's separator is in the process-wide cache.
func SeparatorCached(d Domain) bool {
	separators.RLock()
	defer separators.RUnlock()
	_, ok := separators.m[d]
	return ok
}
