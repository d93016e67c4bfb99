package evm

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/x402"
)

// Function selectors and the event topic of the EIP-3009 token calls quid makes.
var (
	SelectorTransferWithAuthorization = [4]byte{0xe3, 0xee, 0x16, 0x0e}
	SelectorAuthorizationState        = [4]byte{0xe9, 0x4a, 0x01, 0x02}
	SelectorBalanceOf                 = [4]byte{0x70, 0xa0, 0x82, 0x31}
	SelectorName                      = [4]byte{0x06, 0xfd, 0xde, 0x03}
	SelectorVersion                   = [4]byte{0x54, 0xfd, 0x4d, 0x50}
	TransferTopic                     = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
)

// ErrAddress reports a string that is not a 20-byte hex address.
var ErrAddress = errors.New("evm: invalid address")

// ParseAddress decodes a 0x-prefixed 40-digit hex address in any case. Checksums are not
// enforced: x402 peers send lower-case addresses as often as checksummed ones.
func ParseAddress(s string) (common.Address, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 40 {
		return common.Address{}, ErrAddress
	}
	var a common.Address
	if _, err := hex.Decode(a[:], []byte(h)); err != nil {
		return common.Address{}, ErrAddress
	}
	return a, nil
}

// ParseNonce decodes a 0x-prefixed 64-digit hex nonce.
func ParseNonce(s string) ([32]byte, error) {
	var n [32]byte
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 64 {
		return n, errors.New("evm: nonce is not 32 bytes of hex")
	}
	if _, err := hex.Decode(n[:], []byte(h)); err != nil {
		return n, errors.New("evm: nonce is not 32 bytes of hex")
	}
	return n, nil
}

// ParseAuthorization converts the wire form of an EIP-3009 authorization into the typed one.
// Timestamps beyond the range of uint64 are refused: no real authorization needs them.
func ParseAuthorization(w x402.ExactEVMAuthorization) (Authorization, error) {
	var a Authorization
	var err error
	if a.From, err = ParseAddress(w.From); err != nil {
		return a, fmt.Errorf("authorization.from: %w", err)
	}
	if a.To, err = ParseAddress(w.To); err != nil {
		return a, fmt.Errorf("authorization.to: %w", err)
	}
	if a.Value, err = ParseAmount(w.Value); err != nil {
		return a, fmt.Errorf("authorization.value: %w", err)
	}
	if a.ValidAfter, err = parseTime(w.ValidAfter); err != nil {
		return a, fmt.Errorf("authorization.validAfter: %w", err)
	}
	if a.ValidBefore, err = parseTime(w.ValidBefore); err != nil {
		return a, fmt.Errorf("authorization.validBefore: %w", err)
	}
	if a.Nonce, err = ParseNonce(w.Nonce); err != nil {
		return a, fmt.Errorf("authorization.nonce: %w", err)
	}
	return a, nil
}

func parseTime(s string) (uint64, error) {
	if s == "" || len(s) > 20 || !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a base-10 unix time")
	}
	return strconv.ParseUint(s, 10, 64)
}

// Wire returns the authorization as the x402 wire writes it.
func (a *Authorization) Wire() x402.ExactEVMAuthorization {
	return x402.ExactEVMAuthorization{
		From:        a.From.Hex(),
		To:          a.To.Hex(),
		Value:       a.Value.String(),
		ValidAfter:  strconv.FormatUint(a.ValidAfter, 10),
		ValidBefore: strconv.FormatUint(a.ValidBefore, 10),
		Nonce:       "0x" + hex.EncodeToString(a.Nonce[:]),
	}
}

func word(b []byte, off int) []byte { return b[4+32*off : 4+32*(off+1)] }

// TransferWithAuthorizationCalldata encodes transferWithAuthorization(from, to, value,
// validAfter, validBefore, nonce, v, r, s).
func TransferWithAuthorizationCalldata(a *Authorization, sig Signature) []byte {
	b := make([]byte, 4+9*32)
	copy(b, SelectorTransferWithAuthorization[:])
	copy(word(b, 0)[12:], a.From[:])
	copy(word(b, 1)[12:], a.To[:])
	v := a.Value.Bytes32()
	copy(word(b, 2), v[:])
	binary.BigEndian.PutUint64(word(b, 3)[24:], a.ValidAfter)
	binary.BigEndian.PutUint64(word(b, 4)[24:], a.ValidBefore)
	copy(word(b, 5), a.Nonce[:])
	word(b, 6)[31] = sig.V()
	copy(word(b, 7), sig[0:32])
	copy(word(b, 8), sig[32:64])
	return b
}

// AuthorizationStateCalldata encodes authorizationState(authorizer, nonce).
func AuthorizationStateCalldata(authorizer common.Address, nonce [32]byte) []byte {
	b := make([]byte, 4+2*32)
	copy(b, SelectorAuthorizationState[:])
	copy(word(b, 0)[12:], authorizer[:])
	copy(word(b, 1), nonce[:])
	return b
}

// BalanceOfCalldata encodes balanceOf(owner).
func BalanceOfCalldata(owner common.Address) []byte {
	b := make([]byte, 4+32)
	copy(b, SelectorBalanceOf[:])
	copy(word(b, 0)[12:], owner[:])
	return b
}

// DecodeBool decodes an ABI-encoded bool return value.
func DecodeBool(ret []byte) (bool, error) {
	if len(ret) != 32 {
		return false, errors.New("evm: return value is not one word")
	}
	for _, c := range ret[:31] {
		if c != 0 {
			return false, errors.New("evm: return value is not a bool")
		}
	}
	switch ret[31] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, errors.New("evm: return value is not a bool")
}

// DecodeUint256 decodes an ABI-encoded uint256 return value.
func DecodeUint256(ret []byte) (Amount, error) {
	if len(ret) != 32 {
		return Amount{}, errors.New("evm: return value is not one word")
	}
	var a Amount
	a.v.SetBytes32(ret)
	return a, nil
}

// DecodeString decodes an ABI-encoded string return value.
func DecodeString(ret []byte) (string, error) {
	if len(ret) < 64 {
		return "", errors.New("evm: return value is not a string")
	}
	var off, n Amount
	off.v.SetBytes32(ret[:32])
	if !off.v.IsUint64() || off.v.Uint64() > uint64(len(ret)-32) {
		return "", errors.New("evm: return value is not a string")
	}
	o := off.v.Uint64()
	n.v.SetBytes32(ret[o : o+32])
	if !n.v.IsUint64() || n.v.Uint64() > uint64(len(ret))-o-32 {
		return "", errors.New("evm: return value is not a string")
	}
	return string(ret[o+32 : o+32+n.v.Uint64()]), nil
}

var claimDomain = []byte("quid/claim/eip3009/v1")

// ClaimKey returns the key that identifies an authorization for replay protection: a hash of
// (chain id, asset, from, nonce), the tuple the token itself uses to refuse a second use.
func (a *Authorization) ClaimKey(chainID uint64, asset common.Address) [32]byte {
	buf := make([]byte, 0, len(claimDomain)+8+20+20+32)
	buf = append(buf, claimDomain...)
	buf = binary.BigEndian.AppendUint64(buf, chainID)
	buf = append(buf, asset[:]...)
	buf = append(buf, a.From[:]...)
	buf = append(buf, a.Nonce[:]...)
	var k [32]byte
	keccak(&k, buf)
	return k
}

// AuthorizationUsedTopic is the topic of EIP-3009's AuthorizationUsed(authorizer, nonce) event.
var AuthorizationUsedTopic = crypto.Keccak256Hash([]byte("AuthorizationUsed(address,bytes32)"))
