package evm_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// Fuzz targets for every evm parser of network input: none may panic, each failure is the
// documented sentinel, and whatever is accepted prints back in a form that parses to the same
// value.

func FuzzParseSignature(f *testing.F) {
	body := strings.Repeat("ab", 64)
	for _, s := range []string{"0x" + body + "1b", "0x" + body + "00", "0x" + body + "01", "0x" + body + "ff",
		"0x" + strings.ToUpper(body) + "1C", body + "1b", "0x", "", "0x" + body, "0x" + body + "1b00",
		"0x11bd676ab280426fb0d97a19fa428864096bf826a0a9c96124038ed2aa87200817100f41ce8456feca1d5a67f87429aeb53c9d8b393f2800cb78fd4f80d6dd801b"} {
		f.Add(s)
	}
	digest := crypto.Keccak256Hash([]byte("fuzz"))
	halfN := new(big.Int).Rsh(secp256k1N, 1)
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := evm.ParseSignature(s)
		if err != nil {
			if !errors.Is(err, evm.ErrSignatureFormat) {
				t.Fatalf("ParseSignature error %v is not ErrSignatureFormat", err)
			}
			return
		}
		if sig.V() < 27 {
			t.Fatalf("v = %d was not normalized", sig.V())
		}
		str := sig.String()
		if len(str) != 132 || str != strings.ToLower(str) {
			t.Fatalf("String() = %q is not 0x + 130 lower-case hex digits", str)
		}
		if !strings.EqualFold(str[:130], s[:130]) {
			t.Fatalf("r‖s changed: %s -> %s", s, str)
		}
		back, err := evm.ParseSignature(str)
		if err != nil || back != sig {
			t.Fatalf("ParseSignature(String()) = %v, %v; want %v", back, err, sig)
		}
		// Recovery of an arbitrary signature never panics and enforces its rules.
		addr, err := evm.Recover(digest, sig)
		if err == nil {
			if v := sig.V(); v != 27 && v != 28 {
				t.Fatalf("Recover accepted v = %d", v)
			}
			if s := new(big.Int).SetBytes(sig[32:64]); s.Sign() == 0 || s.Cmp(halfN) > 0 {
				t.Fatalf("Recover accepted s = %v", s)
			}
		} else if addr != ([20]byte{}) {
			t.Fatalf("Recover returned %s with error %v", addr, err)
		}
	})
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "1", "1000", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "",
		maxUint256, twoTo256, strings.Repeat("9", 78), strings.Repeat("9", 79), "１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := evm.ParseAmount(s)
		want, isInt := new(big.Int).SetString(s, 10)
		canonical := isInt && want.Sign() >= 0 && want.BitLen() <= 256 && want.String() == s
		if err != nil {
			if !errors.Is(err, evm.ErrAmount) {
				t.Fatalf("ParseAmount error %v is not ErrAmount", err)
			}
			if canonical {
				t.Fatalf("ParseAmount refused the canonical uint256 %q", s)
			}
			return
		}
		if !canonical {
			t.Fatalf("ParseAmount accepted %q, which is not a canonical base-10 uint256", s)
		}
		if a.String() != s {
			t.Fatalf("ParseAmount(%q).String() = %q", s, a.String())
		}
		if a.Big().Cmp(want) != 0 {
			t.Fatalf("ParseAmount(%q) = %v", s, a.Big())
		}
		var u evm.Amount
		if err := u.UnmarshalText([]byte(s)); err != nil || u != a {
			t.Fatalf("UnmarshalText(%q) = %v, %v", s, u, err)
		}
	})
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0.01", "1", "1.", ".5", "-1", "0.0000001", "007.50", "1.2.3", maxUint256, "", "."} {
		f.Add(s, uint8(6))
	}
	f.Add("1.5", uint8(18))
	f.Add("42", uint8(0))
	f.Add("0."+strings.Repeat("0", 254)+"1", uint8(255))
	f.Fuzz(func(t *testing.T, s string, decimals uint8) {
		a, err := evm.ParseDecimal(s, decimals)
		if err != nil {
			if !errors.Is(err, evm.ErrAmount) {
				t.Fatalf("ParseDecimal error %v is not ErrAmount", err)
			}
			return
		}
		// Independent oracle: the exact rational s × 10^decimals is an integer equal to a.
		whole, frac, _ := strings.Cut(s, ".")
		if whole == "" || strings.ContainsAny(s, "+-eE_ ") || len(frac) > int(decimals) {
			t.Fatalf("ParseDecimal accepted %q with %d decimals", s, decimals)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("ParseDecimal accepted %q, which is not a number", s)
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)))
		if !r.IsInt() || r.Num().Cmp(a.Big()) != 0 {
			t.Fatalf("ParseDecimal(%q, %d) = %s, want %s", s, decimals, a, r.RatString())
		}
		// Decimal prints it back in a form that parses to the same amount.
		d := a.Decimal(decimals)
		back, err := evm.ParseDecimal(d, decimals)
		if err != nil || back.Cmp(a) != 0 {
			t.Fatalf("ParseDecimal(Decimal()) = %v, %v for %q", back, err, d)
		}
		if strings.Contains(d, ".") && strings.HasSuffix(d, "0") {
			t.Fatalf("Decimal(%d) = %q has trailing fractional zeros", decimals, d)
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	for _, oa := range oracleAuthorizations {
		f.Add(oa.From, oa.To, oa.Value, oa.ValidAfter, oa.ValidBefore, oa.Nonce)
	}
	f.Add("", "", "", "", "", "")
	f.Add("0x", "0x0", "-1", "01", "18446744073709551616", "0x"+strings.Repeat("g", 64))
	d := evm.DevToken(31337).Domain()
	f.Fuzz(func(t *testing.T, from, to, value, after, before, nonce string) {
		w := x402.ExactEVMAuthorization{From: from, To: to, Value: value, ValidAfter: after, ValidBefore: before, Nonce: nonce}
		a, err := evm.ParseAuthorization(w)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "authorization.") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		wire := a.Wire()
		back, err := evm.ParseAuthorization(wire)
		if err != nil || back != a {
			t.Fatalf("ParseAuthorization(Wire()) = %+v, %v; want %+v", back, err, a)
		}
		if back.Wire() != wire {
			t.Fatal("Wire() is not canonical")
		}
		if !strings.EqualFold(wire.From, from) || !strings.EqualFold(wire.To, to) || !strings.EqualFold(wire.Nonce, nonce) ||
			wire.Value != value || wire.ValidAfter != after || wire.ValidBefore != before {
			t.Fatalf("Wire() = %+v changes the value of %+v", wire, w)
		}
		_ = a.Digest(d)
	})
}

func FuzzDecodeString(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add(append(append(make([]byte, 31), 0x20), append(make([]byte, 31), 3, 'U', 'S', 'D')...))
	f.Fuzz(func(t *testing.T, ret []byte) {
		s, err := evm.DecodeString(ret)
		if err == nil && len(s) > len(ret)-64 {
			t.Fatalf("DecodeString returned %d bytes from a %d-byte return", len(s), len(ret))
		}
	})
}
