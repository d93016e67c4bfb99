package evm_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/quidpay/quid/evm"
)

// maxUint256 is 2^256-1, the largest amount a token can hold (78 digits).
const maxUint256 = "115792089237316195423570985008687907853269984665640564039457584007913129639935"

// twoTo256 is 2^256, one more than any uint256.
const twoTo256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936"

func mustAmount(t testing.TB, s string) evm.Amount {
	t.Helper()
	a, err := evm.ParseAmount(s)
	if err != nil {
		t.Fatalf("ParseAmount(%q): %v", s, err)
	}
	return a
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"zero", "0", true},
		{"one", "1", true},
		{"usdc cent", "10000", true},
		{"max uint256", maxUint256, true},
		{"2^256 overflows", twoTo256, false},
		{"79 digits", "1" + strings.Repeat("0", 78), false},
		{"79 digits of nines", strings.Repeat("9", 79), false},
		{"78 nines overflows", strings.Repeat("9", 78), false},
		{"empty", "", false},
		{"leading zero", "01", false},
		{"double zero", "00", false},
		{"plus sign", "+1", false},
		{"minus sign", "-1", false},
		{"minus zero", "-0", false},
		{"leading space", " 1", false},
		{"trailing space", "1 ", false},
		{"inner space", "1 000", false},
		{"decimal point", "1.0", false},
		{"exponent", "1e3", false},
		{"hex", "0x10", false},
		{"underscore", "1_000", false},
		{"comma", "1,000", false},
		{"unicode digit", "١", false},
		{"fullwidth digit", "１", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := evm.ParseAmount(tc.in)
			if !tc.ok {
				if !errors.Is(err, evm.ErrAmount) {
					t.Fatalf("ParseAmount(%q) = %v, %v; want ErrAmount", tc.in, a, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAmount(%q): %v", tc.in, err)
			}
			if got := a.String(); got != tc.in {
				t.Fatalf("String() = %q, want %q", got, tc.in)
			}
			want, _ := new(big.Int).SetString(tc.in, 10)
			if a.Big().Cmp(want) != 0 {
				t.Fatalf("Big() = %v, want %v", a.Big(), want)
			}
		})
	}
}

func TestParseDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		decimals uint8
		want     string // atomic units; "" means refused
	}{
		{"cent in 6 decimals", "0.01", 6, "10000"},
		{"one dollar", "1", 6, "1000000"},
		{"one with trailing zeros", "1.000000", 6, "1000000"},
		{"smallest unit", "0.000001", 6, "1"},
		{"whole and fraction", "12.5", 6, "12500000"},
		{"zero", "0", 6, "0"},
		{"zero point zero", "0.0", 6, "0"},
		{"leading zeros in whole", "007.5", 6, "7500000"},
		{"18 decimals", "1.5", 18, "1500000000000000000"},
		{"zero decimals", "42", 0, "42"},
		{"max uint256 in 0 decimals", maxUint256, 0, maxUint256},
		{"max uint256 with fraction", maxUint256[:72] + "." + maxUint256[72:], 6, maxUint256},
		{"overflow after scaling", maxUint256, 1, ""},
		{"2^256", twoTo256, 0, ""},
		{"too many decimals", "0.0000001", 6, ""},
		{"fraction with 0 decimals", "1.0", 0, ""},
		{"trailing dot", "1.", 6, ""},
		{"leading dot", ".5", 6, ""},
		{"lone dot", ".", 6, ""},
		{"negative", "-1", 6, ""},
		{"plus", "+1", 6, ""},
		{"empty", "", 6, ""},
		{"space", " 1", 6, ""},
		{"two dots", "1.2.3", 6, ""},
		{"comma decimal", "0,01", 6, ""},
		{"exponent", "1e-2", 6, ""},
		{"dollar sign", "$1", 6, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := evm.ParseDecimal(tc.in, tc.decimals)
			if tc.want == "" {
				if !errors.Is(err, evm.ErrAmount) {
					t.Fatalf("ParseDecimal(%q, %d) = %v, %v; want ErrAmount", tc.in, tc.decimals, a, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDecimal(%q, %d): %v", tc.in, tc.decimals, err)
			}
			if a.String() != tc.want {
				t.Fatalf("ParseDecimal(%q, %d) = %s, want %s", tc.in, tc.decimals, a, tc.want)
			}
		})
	}
}

func TestAmountDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		atomic   string
		decimals uint8
		want     string
	}{
		{"0", 6, "0"},
		{"1", 6, "0.000001"},
		{"10000", 6, "0.01"},
		{"100000", 6, "0.1"},
		{"999999", 6, "0.999999"},
		{"1000000", 6, "1"},
		{"1000001", 6, "1.000001"},
		{"12500000", 6, "12.5"},
		{"123456789", 6, "123.456789"},
		{"1500000000000000000", 18, "1.5"},
		{"42", 0, "42"},
		{"100", 2, "1"},
		{"5", 1, "0.5"},
		{maxUint256, 6, maxUint256[:72] + "." + maxUint256[72:]},
		{"1", 80, "0." + strings.Repeat("0", 79) + "1"},
	}
	for _, tc := range tests {
		t.Run(tc.atomic+"/"+tc.want, func(t *testing.T) {
			t.Parallel()
			a := mustAmount(t, tc.atomic)
			got := a.Decimal(tc.decimals)
			if got != tc.want {
				t.Fatalf("Decimal(%d) of %s = %q, want %q", tc.decimals, tc.atomic, got, tc.want)
			}
			// What Decimal prints, ParseDecimal reads back as the same amount.
			back, err := evm.ParseDecimal(got, tc.decimals)
			if err != nil || back.Cmp(a) != 0 {
				t.Fatalf("ParseDecimal(%q, %d) = %v, %v; want %s", got, tc.decimals, back, err, a)
			}
		})
	}
}

func TestAmountArithmetic(t *testing.T) {
	t.Parallel()
	max := mustAmount(t, maxUint256)
	one := evm.NewAmount(1)
	zero := evm.NewAmount(0)
	tests := []struct {
		name   string
		op     func() (evm.Amount, bool)
		want   string
		wantOK bool
	}{
		{"add", func() (evm.Amount, bool) { return evm.NewAmount(2).Add(evm.NewAmount(3)) }, "5", true},
		{"add to max", func() (evm.Amount, bool) { return max.Add(zero) }, maxUint256, true},
		{"add overflows", func() (evm.Amount, bool) { return max.Add(one) }, "", false},
		{"add max+max overflows", func() (evm.Amount, bool) { return max.Add(max) }, "", false},
		{"sub", func() (evm.Amount, bool) { return evm.NewAmount(5).Sub(evm.NewAmount(3)) }, "2", true},
		{"sub to zero", func() (evm.Amount, bool) { return one.Sub(one) }, "0", true},
		{"sub underflows", func() (evm.Amount, bool) { return zero.Sub(one) }, "", false},
		{"sub max", func() (evm.Amount, bool) { return max.Sub(max) }, "0", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tc.op()
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v (result %s)", ok, tc.wantOK, got)
			}
			if ok && got.String() != tc.want {
				t.Fatalf("result = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestAmountCompare(t *testing.T) {
	t.Parallel()
	a, b := evm.NewAmount(1), mustAmount(t, maxUint256)
	if a.Cmp(b) != -1 || b.Cmp(a) != 1 || a.Cmp(evm.NewAmount(1)) != 0 {
		t.Fatal("Cmp does not order 1 < 2^256-1")
	}
	if !evm.NewAmount(0).IsZero() || a.IsZero() {
		t.Fatal("IsZero wrong")
	}
	var zero evm.Amount
	if !zero.IsZero() || zero.String() != "0" {
		t.Fatalf("zero value Amount = %q, want 0", zero.String())
	}
}

func TestAmountFromBig(t *testing.T) {
	t.Parallel()
	max, _ := new(big.Int).SetString(maxUint256, 10)
	over, _ := new(big.Int).SetString(twoTo256, 10)
	tests := []struct {
		name string
		in   *big.Int
		ok   bool
	}{
		{"nil", nil, false},
		{"negative", big.NewInt(-1), false},
		{"zero", big.NewInt(0), true},
		{"max", max, true},
		{"2^256", over, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, ok := evm.AmountFromBig(tc.in)
			if ok != tc.ok {
				t.Fatalf("AmountFromBig(%v) ok = %v, want %v", tc.in, ok, tc.ok)
			}
			if ok && a.Big().Cmp(tc.in) != 0 {
				t.Fatalf("AmountFromBig(%v) = %s", tc.in, a)
			}
		})
	}
}

func TestAmountBytes32(t *testing.T) {
	t.Parallel()
	w := evm.NewAmount(0x0102).Bytes32()
	if w[30] != 0x01 || w[31] != 0x02 || w[0] != 0 {
		t.Fatalf("Bytes32 is not big-endian: %x", w)
	}
	m := mustAmount(t, maxUint256).Bytes32()
	for i, c := range m {
		if c != 0xff {
			t.Fatalf("Bytes32(max)[%d] = %#x", i, c)
		}
	}
}

func TestAmountText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"1000", true},
		{maxUint256, true},
		{"", false},
		{"01", false},
		{"-5", false},
		{twoTo256, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var a evm.Amount
			err := a.UnmarshalText([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("UnmarshalText(%q) = %v", tc.in, err)
			}
			if !tc.ok {
				if !a.IsZero() {
					t.Fatalf("failed UnmarshalText changed the amount to %s", a)
				}
				return
			}
			b, _ := a.MarshalText()
			if string(b) != tc.in {
				t.Fatalf("MarshalText = %q, want %q", b, tc.in)
			}
		})
	}
}
