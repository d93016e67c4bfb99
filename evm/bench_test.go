package evm

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/quidpay/quid/x402"
)

// The benchmarks measure, in one run, the cost floor of verifying an x402 exact payment (one
// ECDSA public-key recovery) against what quid's verify path actually spends. Compare
// VerifyPath with RecoverRaw: the ratio is the overhead of everything but the curve arithmetic.

type benchFixture struct {
	domain Domain
	auth   Authorization
	digest [32]byte
	sig    Signature
	raw    [65]byte // sig with v = 0/1, as crypto.Ecrecover takes it
	from   common.Address
	typed  apitypes.TypedData
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	key, err := crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	if err != nil {
		b.Fatal(err)
	}
	od := OracleDomain{Name: "USD Coin", Version: "2", ChainID: 31337, VerifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
	oa := OracleAuthorization{From: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", To: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		Value: "1000", ValidAfter: "0", ValidBefore: "1795320287",
		Nonce: "0x44dec795aea5cea4e9375a5636427c3d56efaf1b9f308ba3f27706272366aa3a"}
	f := &benchFixture{
		domain: Domain{Name: od.Name, Version: od.Version, ChainID: uint64(od.ChainID), VerifyingContract: common.HexToAddress(od.VerifyingContract)},
		from:   crypto.PubkeyToAddress(key.PublicKey),
		typed:  OracleTypedData(od, oa),
	}
	if f.auth, err = ParseAuthorization(x402.ExactEVMAuthorization(oa)); err != nil {
		b.Fatal(err)
	}
	f.digest = f.auth.Digest(f.domain)
	if f.sig, err = Sign(key, f.digest); err != nil {
		b.Fatal(err)
	}
	f.raw = f.sig
	f.raw[64] -= 27
	return f
}

// verify is what a facilitator does per payment once the payload is parsed: digest under the
// token's (cached) domain, recover, compare with the claimed payer.
func (f *benchFixture) verify() bool {
	d := f.auth.Digest(f.domain)
	addr, err := Recover(d, f.sig)
	return err == nil && addr == f.auth.From
}

func BenchmarkRecoverRaw(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := crypto.Ecrecover(f.digest[:], f.raw[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPath(b *testing.B) {
	f := newBenchFixture(b)
	if !f.verify() {
		b.Fatal("fixture does not verify")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !f.verify() {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkVerifyPathParallel(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !f.verify() {
				b.Error("verify failed")
				return
			}
		}
	})
}

func BenchmarkRecover(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Recover(f.digest, f.sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		f.digest = f.auth.Digest(f.domain)
	}
}

func BenchmarkDigestUncachedSeparator(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		sep := f.domain.computeSeparator()
		f.digest = f.auth.digestWithSeparator(sep)
	}
}

func BenchmarkSign(b *testing.B) {
	f := newBenchFixture(b)
	key, _ := crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(key, f.digest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAPITypesDigest(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := apitypes.TypedDataAndHash(f.typed); err != nil {
			b.Fatal(err)
		}
	}
}
