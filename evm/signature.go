package evm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signature is a 65-byte ECDSA signature r ‖ s ‖ v with v = 27 or 28, the form EIP-3009 tokens
// and the x402 wire use.
type Signature [65]byte

// Signature errors. ErrHighS is distinct because a high-s signature is a malleated copy of a
// valid one: the token would reject it, and accepting it would give one payment two encodings.
var (
	ErrSignatureFormat = errors.New("evm: signature is not 65 bytes of hex")
	ErrHighS           = errors.New("evm: signature s is in the upper half of the curve order")
	ErrSignature       = errors.New("evm: invalid signature")
)

// ParseSignature decodes 0x-prefixed hex of 65 bytes. A v of 0 or 1 is normalized to 27 or 28.
func ParseSignature(s string) (Signature, error) {
	var sig Signature
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 130 {
		return sig, ErrSignatureFormat
	}
	if _, err := hex.Decode(sig[:], []byte(h)); err != nil {
		return sig, ErrSignatureFormat
	}
	if sig[64] < 27 {
		sig[64] += 27
	}
	return sig, nil
}

// String returns the signature as 0x-prefixed lower-case hex.
func (s Signature) String() string { return "0x" + hex.EncodeToString(s[:]) }

// V, R and S return the signature's parts as the token's (v, r, s) parameters take them.
func (s Signature) V() uint8 { return s[64] }

// R returns the r part.
func (s Signature) R() [32]byte { return [32]byte(s[0:32]) }

// S returns the s part.
func (s Signature) S() [32]byte { return [32]byte(s[32:64]) }

// Sign signs a digest with v = 27/28 and a low s.
func Sign(key *ecdsa.PrivateKey, digest [32]byte) (Signature, error) {
	var sig Signature
	raw, err := crypto.Sign(digest[:], key)
	if err != nil {
		return sig, err
	}
	copy(sig[:], raw)
	sig[64] += 27
	return sig, nil
}

// Recover returns the address whose key made sig over digest. It refuses v outside 27/28, r or s
// out of range, and high s.
func Recover(digest [32]byte, sig Signature) (common.Address, error) {
	v := sig[64]
	if v != 27 && v != 28 {
		return common.Address{}, ErrSignature
	}
	// Range checks on the big-endian bytes: 0 < r < n and 0 < s ≤ n/2, without big.Int.
	r, s := sig[0:32], sig[32:64]
	if isZero(r) || isZero(s) || bytes.Compare(r, secp256k1N[:]) >= 0 || bytes.Compare(s, secp256k1N[:]) >= 0 {
		return common.Address{}, ErrSignature
	}
	if bytes.Compare(s, secp256k1HalfN[:]) > 0 {
		return common.Address{}, ErrHighS
	}
	var raw [65]byte
	copy(raw[:], sig[:])
	raw[64] = v - 27
	pub, err := crypto.Ecrecover(digest[:], raw[:])
	if err != nil || len(pub) != 65 {
		return common.Address{}, ErrSignature
	}
	var h [32]byte
	keccak(&h, pub[1:])
	return common.Address(h[12:]), nil
}

var (
	secp256k1N     = [32]byte(crypto.S256().Params().N.FillBytes(make([]byte, 32)))
	secp256k1HalfN = [32]byte(new(big.Int).Rsh(crypto.S256().Params().N, 1).FillBytes(make([]byte, 32)))
)

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// NewNonce returns 32 random bytes for an EIP-3009 nonce.
func NewNonce() ([32]byte, error) {
	var n [32]byte
	_, err := rand.Read(n[:])
	return n, err
}

// SignAuthorization signs a under domain d.
func SignAuthorization(key *ecdsa.PrivateKey, d Domain, a *Authorization) (Signature, error) {
	return Sign(key, a.Digest(d))
}
