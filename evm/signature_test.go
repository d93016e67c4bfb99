package evm_test

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
)

// Well-known public Hardhat/Anvil test keys. They hold nothing of value anywhere.
const (
	hardhatKey0 = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	hardhatKey1 = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
)

var secp256k1N = crypto.S256().Params().N

func testKey(t testing.TB, hexKey string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.HexToECDSA(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// malleate returns the other valid encoding of sig: s' = n - s with the parity of v flipped.
func malleate(sig evm.Signature) evm.Signature {
	s := new(big.Int).SetBytes(sig[32:64])
	s.Sub(secp256k1N, s)
	out := sig
	s.FillBytes(out[32:64])
	out[64] ^= 27 ^ 28
	return out
}

func TestSignRecover(t *testing.T) {
	t.Parallel()
	for _, hk := range []string{hardhatKey0, hardhatKey1} {
		for j, oa := range oracleAuthorizations {
			t.Run(hk[:6]+"/"+string(rune('0'+j)), func(t *testing.T) {
				t.Parallel()
				key := testKey(t, hk)
				want := crypto.PubkeyToAddress(key.PublicKey)
				a := authorizationOf(t, oa)
				d := domainOf(t, oracleDomains[j%len(oracleDomains)])
				sig, err := evm.SignAuthorization(key, d, &a)
				if err != nil {
					t.Fatal(err)
				}
				if v := sig.V(); v != 27 && v != 28 {
					t.Fatalf("v = %d, want 27 or 28", v)
				}
				if new(big.Int).SetBytes(sig[32:64]).Cmp(new(big.Int).Rsh(secp256k1N, 1)) > 0 {
					t.Fatal("Sign produced a high s")
				}
				if r, s := sig.R(), sig.S(); [32]byte(sig[0:32]) != r || [32]byte(sig[32:64]) != s {
					t.Fatal("R/S do not return the signature's parts")
				}
				digest := a.Digest(d)
				got, err := evm.Recover(digest, sig)
				if err != nil {
					t.Fatalf("Recover: %v", err)
				}
				if got != want {
					t.Fatalf("Recover = %s, want %s", got, want)
				}
				// go-ethereum's own recovery agrees on the same bytes (with v = 0/1).
				raw := sig
				raw[64] -= 27
				pub, err := crypto.SigToPub(digest[:], raw[:])
				if err != nil || crypto.PubkeyToAddress(*pub) != want {
					t.Fatalf("go-ethereum recovers %v, %v", pub, err)
				}
				// A different digest recovers someone else (or nothing).
				other := digest
				other[0] ^= 1
				if addr, err := evm.Recover(other, sig); err == nil && addr == want {
					t.Fatal("signature verifies for a different digest")
				}
			})
		}
	}
}

func TestRecoverRefuses(t *testing.T) {
	t.Parallel()
	key := testKey(t, hardhatKey0)
	digest := crypto.Keccak256Hash([]byte("quid recover test"))
	good, err := evm.Sign(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	halfN := new(big.Int).Rsh(secp256k1N, 1)

	with := func(f func(*evm.Signature)) evm.Signature {
		s := good
		f(&s)
		return s
	}
	setS := func(v *big.Int) func(*evm.Signature) {
		return func(s *evm.Signature) { v.FillBytes(s[32:64]) }
	}
	setR := func(v *big.Int) func(*evm.Signature) {
		return func(s *evm.Signature) { v.FillBytes(s[0:32]) }
	}
	tests := []struct {
		name string
		sig  evm.Signature
		want error
	}{
		{"high s (malleated copy)", malleate(good), evm.ErrHighS},
		{"high s = n-1", with(setS(new(big.Int).Sub(secp256k1N, big.NewInt(1)))), evm.ErrHighS},
		{"s = n/2 + 1", with(setS(new(big.Int).Add(halfN, big.NewInt(1)))), evm.ErrHighS},
		{"v = 0", with(func(s *evm.Signature) { s[64] = 0 }), evm.ErrSignature},
		{"v = 1", with(func(s *evm.Signature) { s[64] = 1 }), evm.ErrSignature},
		{"v = 26", with(func(s *evm.Signature) { s[64] = 26 }), evm.ErrSignature},
		{"v = 29", with(func(s *evm.Signature) { s[64] = 29 }), evm.ErrSignature},
		{"v = 37 (EIP-155 style)", with(func(s *evm.Signature) { s[64] = 37 }), evm.ErrSignature},
		{"v = 255", with(func(s *evm.Signature) { s[64] = 255 }), evm.ErrSignature},
		{"r = 0", with(setR(big.NewInt(0))), evm.ErrSignature},
		{"s = 0", with(setS(big.NewInt(0))), evm.ErrSignature},
		{"r = n", with(setR(secp256k1N)), evm.ErrSignature},
		{"s = n", with(setS(secp256k1N)), evm.ErrSignature},
		{"r = 2^256-1", with(func(s *evm.Signature) {
			for i := range 32 {
				s[i] = 0xff
			}
		}), evm.ErrSignature},
		{"all zero", evm.Signature{}, evm.ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, err := evm.Recover(digest, tc.sig)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Recover = %s, %v; want %v", addr, err, tc.want)
			}
			if addr != (common.Address{}) {
				t.Fatalf("Recover returned address %s with an error", addr)
			}
		})
	}

	// The malleated copy is a valid signature by the same key: go-ethereum (without the low-s
	// rule) recovers the same signer from it. That is why it must be refused.
	m := malleate(good)
	m[64] -= 27
	pub, err := crypto.SigToPub(digest[:], m[:])
	if err != nil || crypto.PubkeyToAddress(*pub) != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("malleated signature does not recover the signer in go-ethereum: %v", err)
	}
}

func TestRecoverBoundaryS(t *testing.T) {
	t.Parallel()
	// s = n/2 exactly is the largest low s; it must not be refused as high. Find a valid
	// signature by searching r over a fixed digest: any r that is an x coordinate works.
	digest := crypto.Keccak256Hash([]byte("boundary"))
	halfN := new(big.Int).Rsh(secp256k1N, 1)
	var sig evm.Signature
	halfN.FillBytes(sig[32:64])
	sig[64] = 27
	for r := int64(1); r < 64; r++ {
		big.NewInt(r).FillBytes(sig[0:32])
		_, err := evm.Recover(digest, sig)
		if errors.Is(err, evm.ErrHighS) {
			t.Fatalf("s = n/2 refused as high s")
		}
		if err == nil {
			return
		}
	}
	t.Fatal("no r in [1,64) is a curve x coordinate; choose another range")
}

func TestParseSignature(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("ab", 64) // r ‖ s
	tests := []struct {
		name  string
		in    string
		wantV uint8 // 0 means refused
	}{
		{"v 1b", "0x" + body + "1b", 27},
		{"v 1c", "0x" + body + "1c", 28},
		{"v 00 normalized", "0x" + body + "00", 27},
		{"v 01 normalized", "0x" + body + "01", 28},
		{"upper-case hex", "0x" + strings.ToUpper(body) + "1B", 27},
		{"missing 0x", body + "1b", 0},
		{"upper-case 0X", "0X" + body + "1b", 0},
		{"64 bytes", "0x" + body, 0},
		{"66 bytes", "0x" + body + "1b00", 0},
		{"odd length", "0x" + body + "1", 0},
		{"empty", "", 0},
		{"just 0x", "0x", 0},
		{"non-hex", "0x" + body + "zz", 0},
		{"space", " 0x" + body + "1b", 0},
		{"ERC-6492 wrapped", "0x" + body + "1b" + strings.Repeat("6492", 16), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sig, err := evm.ParseSignature(tc.in)
			if tc.wantV == 0 {
				if !errors.Is(err, evm.ErrSignatureFormat) {
					t.Fatalf("ParseSignature(%q) = %v, %v; want ErrSignatureFormat", tc.in, sig, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSignature(%q): %v", tc.in, err)
			}
			if sig.V() != tc.wantV {
				t.Fatalf("v = %d, want %d", sig.V(), tc.wantV)
			}
			if got, want := sig.String()[:130], "0x"+body; got != want {
				t.Fatalf("String() = %s…, want %s…", got, want)
			}
		})
	}
}

func TestParseSignatureNormalizedRecovers(t *testing.T) {
	t.Parallel()
	key := testKey(t, hardhatKey1)
	digest := crypto.Keccak256Hash([]byte("v normalization"))
	raw, err := crypto.Sign(digest[:], key) // go-ethereum's v is 0 or 1
	if err != nil {
		t.Fatal(err)
	}
	sig, err := evm.ParseSignature("0x" + common.Bytes2Hex(raw))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := evm.Recover(digest, sig)
	if err != nil || addr != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("Recover of a v=0/1 signature = %s, %v", addr, err)
	}
	back, err := evm.ParseSignature(sig.String())
	if err != nil || back != sig {
		t.Fatalf("ParseSignature(String()) = %v, %v", back, err)
	}
}

func TestNewNonce(t *testing.T) {
	t.Parallel()
	a, err := evm.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	b, err := evm.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a == ([32]byte{}) {
		t.Fatalf("NewNonce is not random: %x, %x", a, b)
	}
}
