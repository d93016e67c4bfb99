package evm

import (
	"errors"
	"math/big"
	"strings"

	"github.com/holiman/uint256"
)

// Amount is a token quantity in atomic units (a uint256, like the token's own arithmetic).
type Amount struct{ v uint256.Int }

// ErrAmount reports a string that is not a valid amount.
var ErrAmount = errors.New("evm: invalid amount")

// NewAmount returns n atomic units.
func NewAmount(n uint64) Amount {
	var a Amount
	a.v.SetUint64(n)
	return a
}

// ParseAmount parses a base-10 count of atomic units as the x402 wire writes it: digits only,
// no sign, no leading zeros (except "0"), at most 78 digits.
func ParseAmount(s string) (Amount, error) {
	var a Amount
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') || !allDigits(s) {
		return a, ErrAmount
	}
	if err := a.v.SetFromDecimal(s); err != nil {
		return a, ErrAmount
	}
	return a, nil
}

// ParseDecimal parses a human amount such as "0.01" in a token of the given decimals. It refuses
// more fractional digits than the token has rather than rounding.
func ParseDecimal(s string, decimals uint8) (Amount, error) {
	if !IsDecimal(s) {
		return Amount{}, ErrAmount
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > int(decimals) {
		return Amount{}, ErrAmount
	}
	digits := strings.TrimLeft(whole+frac+strings.Repeat("0", int(decimals)-len(frac)), "0")
	if digits == "" {
		digits = "0"
	}
	return ParseAmount(digits)
}

// IsDecimal reports whether s is a plain decimal as people write amounts: digits, optionally a
// dot and more digits ("12", "0.05"), without sign, exponent or separators.
func IsDecimal(s string) bool {
	whole, frac, hasDot := strings.Cut(s, ".")
	return whole != "" && allDigits(whole) && (!hasDot || (frac != "" && allDigits(frac)))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns the amount in atomic units, base 10.
func (a Amount) String() string { return a.v.Dec() }

// Decimal formats the amount for people, in a token of the given decimals, without trailing
// fractional zeros.
func (a Amount) Decimal(decimals uint8) string {
	s := a.v.Dec()
	d := int(decimals)
	if d == 0 {
		return s
	}
	if len(s) <= d {
		s = strings.Repeat("0", d-len(s)+1) + s
	}
	whole, frac := s[:len(s)-d], strings.TrimRight(s[len(s)-d:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// Cmp compares a and b and returns -1, 0 or +1.
func (a Amount) Cmp(b Amount) int { return a.v.Cmp(&b.v) }

// IsZero reports whether the amount is zero.
func (a Amount) IsZero() bool { return a.v.IsZero() }

// Add returns a+b, and false on overflow.
func (a Amount) Add(b Amount) (Amount, bool) {
	var r Amount
	_, overflow := r.v.AddOverflow(&a.v, &b.v)
	return r, !overflow
}

// Sub returns a-b, and false when b > a.
func (a Amount) Sub(b Amount) (Amount, bool) {
	var r Amount
	_, underflow := r.v.SubOverflow(&a.v, &b.v)
	return r, !underflow
}

// Big returns the amount as a new big.Int.
func (a Amount) Big() *big.Int { return a.v.ToBig() }

// AmountFromBig converts a non-negative big.Int of at most 256 bits.
func AmountFromBig(b *big.Int) (Amount, bool) {
	var a Amount
	if b == nil || b.Sign() < 0 {
		return a, false
	}
	overflow := a.v.SetFromBig(b)
	return a, !overflow
}

// Bytes32 returns the amount as a big-endian 32-byte word, as the ABI encodes uint256.
func (a Amount) Bytes32() [32]byte { return a.v.Bytes32() }

// MarshalText writes the amount in atomic units.
func (a Amount) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an amount in atomic units.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := ParseAmount(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}
