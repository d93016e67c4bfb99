package evm_test

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// tokenABI is the part of an EIP-3009 token's ABI quid calls, written out independently of the
// hand-rolled encoders.
const tokenABI = `[
 {"type":"function","name":"transferWithAuthorization","stateMutability":"nonpayable","inputs":[
  {"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},
  {"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"},
  {"name":"v","type":"uint8"},{"name":"r","type":"bytes32"},{"name":"s","type":"bytes32"}],"outputs":[]},
 {"type":"function","name":"authorizationState","stateMutability":"view","inputs":[
  {"name":"authorizer","type":"address"},{"name":"nonce","type":"bytes32"}],"outputs":[{"name":"","type":"bool"}]},
 {"type":"function","name":"balanceOf","stateMutability":"view","inputs":[
  {"name":"account","type":"address"}],"outputs":[{"name":"","type":"uint256"}]},
 {"type":"function","name":"name","stateMutability":"view","inputs":[],"outputs":[{"name":"","type":"string"}]},
 {"type":"function","name":"version","stateMutability":"view","inputs":[],"outputs":[{"name":"","type":"string"}]},
 {"type":"event","name":"Transfer","anonymous":false,"inputs":[
  {"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},
  {"name":"value","type":"uint256","indexed":false}]}
]`

func parsedABI(t testing.TB) abi.ABI {
	t.Helper()
	a, err := abi.JSON(strings.NewReader(tokenABI))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSelectors(t *testing.T) {
	t.Parallel()
	a := parsedABI(t)
	tests := []struct {
		method string
		got    [4]byte
	}{
		{"transferWithAuthorization", evm.SelectorTransferWithAuthorization},
		{"authorizationState", evm.SelectorAuthorizationState},
		{"balanceOf", evm.SelectorBalanceOf},
		{"name", evm.SelectorName},
		{"version", evm.SelectorVersion},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			if want := [4]byte(a.Methods[tc.method].ID); tc.got != want {
				t.Fatalf("selector = %x, want %x", tc.got, want)
			}
		})
	}
	if evm.TransferTopic != a.Events["Transfer"].ID {
		t.Fatalf("TransferTopic = %s, want %s", evm.TransferTopic, a.Events["Transfer"].ID)
	}
}

func TestTransferWithAuthorizationCalldata(t *testing.T) {
	t.Parallel()
	token := parsedABI(t)
	key := testKey(t, hardhatKey0)
	for j, oa := range oracleAuthorizations {
		t.Run(string(rune('0'+j)), func(t *testing.T) {
			t.Parallel()
			a := authorizationOf(t, oa)
			sig, err := evm.SignAuthorization(key, domainOf(t, oracleDomains[2]), &a)
			if err != nil {
				t.Fatal(err)
			}
			value, _ := new(big.Int).SetString(oa.Value, 10)
			after, _ := new(big.Int).SetString(oa.ValidAfter, 10)
			before, _ := new(big.Int).SetString(oa.ValidBefore, 10)
			want, err := token.Pack("transferWithAuthorization",
				common.HexToAddress(oa.From), common.HexToAddress(oa.To), value, after, before,
				[32]byte(common.FromHex(oa.Nonce)), sig.V(), sig.R(), sig.S())
			if err != nil {
				t.Fatal(err)
			}
			if got := evm.TransferWithAuthorizationCalldata(&a, sig); !bytes.Equal(got, want) {
				t.Fatalf("calldata\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestViewCalldata(t *testing.T) {
	t.Parallel()
	token := parsedABI(t)
	addrs := []common.Address{
		{},
		common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
		common.HexToAddress("0xffffffffffffffffffffffffffffffffffffffff"),
	}
	nonces := [][32]byte{{}, [32]byte(common.FromHex(oracleAuthorizations[0].Nonce)), [32]byte(bytes.Repeat([]byte{0xff}, 32))}
	for i, addr := range addrs {
		t.Run(addr.Hex(), func(t *testing.T) {
			t.Parallel()
			want, err := token.Pack("authorizationState", addr, nonces[i])
			if err != nil {
				t.Fatal(err)
			}
			if got := evm.AuthorizationStateCalldata(addr, nonces[i]); !bytes.Equal(got, want) {
				t.Fatalf("authorizationState calldata\n got %x\nwant %x", got, want)
			}
			want, err = token.Pack("balanceOf", addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := evm.BalanceOfCalldata(addr); !bytes.Equal(got, want) {
				t.Fatalf("balanceOf calldata\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestDecodeReturnValues(t *testing.T) {
	t.Parallel()
	token := parsedABI(t)
	word := func(b ...byte) []byte { return common.LeftPadBytes(b, 32) }

	t.Run("bool", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			in   []byte
			want bool
			ok   bool
		}{
			{"true", word(1), true, true},
			{"false", word(0), false, true},
			{"two", word(2), false, false},
			{"high byte set", append([]byte{1}, make([]byte, 31)...), false, false},
			{"short", make([]byte, 31), false, false},
			{"long", make([]byte, 33), false, false},
			{"empty (call to an EOA)", nil, false, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := evm.DecodeBool(tc.in)
				if (err == nil) != tc.ok || got != tc.want {
					t.Fatalf("DecodeBool(%x) = %v, %v", tc.in, got, err)
				}
				if tc.ok {
					// Agrees with go-ethereum's decoder.
					out, err := token.Unpack("authorizationState", tc.in)
					if err != nil || out[0].(bool) != got {
						t.Fatalf("abi decodes %v, %v", out, err)
					}
				}
			})
		}
	})

	t.Run("uint256", func(t *testing.T) {
		t.Parallel()
		max := bytes.Repeat([]byte{0xff}, 32)
		tests := []struct {
			name string
			in   []byte
			want string
		}{
			{"zero", word(0), "0"},
			{"1000", word(0x03, 0xe8), "1000"},
			{"max", max, maxUint256},
			{"short", make([]byte, 31), ""},
			{"long", make([]byte, 64), ""},
			{"empty", nil, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := evm.DecodeUint256(tc.in)
				if tc.want == "" {
					if err == nil {
						t.Fatalf("DecodeUint256(%x) = %s, want an error", tc.in, got)
					}
					return
				}
				if err != nil || got.String() != tc.want {
					t.Fatalf("DecodeUint256(%x) = %s, %v; want %s", tc.in, got, err, tc.want)
				}
			})
		}
	})

	t.Run("string", func(t *testing.T) {
		t.Parallel()
		pack := func(s string) []byte {
			b, err := token.Methods["name"].Outputs.Pack(s)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		long := strings.Repeat("USD Coin ", 20)
		good := pack("USD Coin")
		tests := []struct {
			name string
			in   []byte
			want string
			ok   bool
		}{
			{"USD Coin", good, "USD Coin", true},
			{"empty string", pack(""), "", true},
			{"long", pack(long), long, true},
			{"exactly 32 bytes", pack(strings.Repeat("x", 32)), strings.Repeat("x", 32), true},
			{"unicode", pack("Dólar ✓"), "Dólar ✓", true},
			{"empty return", nil, "", false},
			{"one word", word(0x20), "", false},
			{"offset past end", append(word(0xff), word(0)...), "", false},
			{"offset 2^64", append(append(word(1, 0, 0, 0, 0, 0, 0, 0, 0), word(0)...), word(0)...), "", false},
			{"offset huge", append(bytes.Repeat([]byte{0xff}, 32), word(0)...), "", false},
			{"length past end", append(word(0x20), word(0x21)...), "", false},
			{"length huge", append(word(0x20), bytes.Repeat([]byte{0xff}, 32)...), "", false},
			{"length 2^64-1", append(word(0x20), word(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)...), "", false},
			{"truncated body", good[:len(good)-32], "", false},
			{"bytes32 return (old MKR-style name)", append(common.RightPadBytes([]byte("MKR"), 32), word(0)...), "", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := evm.DecodeString(tc.in)
				if (err == nil) != tc.ok || got != tc.want {
					t.Fatalf("DecodeString(%x) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
				}
			})
		}
	})
}

func TestParseAddress(t *testing.T) {
	t.Parallel()
	const checksummed = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	want := common.HexToAddress(checksummed)
	tests := []struct {
		in string
		ok bool
	}{
		{checksummed, true},
		{strings.ToLower(checksummed), true},
		{"0x" + strings.ToUpper(checksummed[2:]), true},
		{checksummed[2:], false},
		{"0X" + checksummed[2:], false},
		{checksummed[:41], false},
		{checksummed + "00", false},
		{"0x" + strings.Repeat("g", 40), false},
		{"", false},
		{" " + checksummed, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := evm.ParseAddress(tc.in)
			if !tc.ok {
				if !errors.Is(err, evm.ErrAddress) {
					t.Fatalf("ParseAddress(%q) = %s, %v; want ErrAddress", tc.in, got, err)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("ParseAddress(%q) = %s, %v", tc.in, got, err)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	good := x402.ExactEVMAuthorization(oracleAuthorizations[0])
	tests := []struct {
		name   string
		mutate func(*x402.ExactEVMAuthorization)
		field  string // "" means accepted
		is     error
	}{
		{"valid", func(*x402.ExactEVMAuthorization) {}, "", nil},
		{"lower-case addresses", func(w *x402.ExactEVMAuthorization) {
			w.From, w.To = strings.ToLower(w.From), strings.ToLower(w.To)
		}, "", nil},
		{"upper-case nonce", func(w *x402.ExactEVMAuthorization) { w.Nonce = "0x" + strings.ToUpper(w.Nonce[2:]) }, "", nil},
		{"max validBefore", func(w *x402.ExactEVMAuthorization) { w.ValidBefore = "18446744073709551615" }, "", nil},
		{"from missing 0x", func(w *x402.ExactEVMAuthorization) { w.From = w.From[2:] }, "authorization.from", evm.ErrAddress},
		{"from short", func(w *x402.ExactEVMAuthorization) { w.From = w.From[:40] }, "authorization.from", evm.ErrAddress},
		{"from empty", func(w *x402.ExactEVMAuthorization) { w.From = "" }, "authorization.from", evm.ErrAddress},
		{"to not hex", func(w *x402.ExactEVMAuthorization) { w.To = "0x" + strings.Repeat("z", 40) }, "authorization.to", evm.ErrAddress},
		{"value empty", func(w *x402.ExactEVMAuthorization) { w.Value = "" }, "authorization.value", evm.ErrAmount},
		{"value negative", func(w *x402.ExactEVMAuthorization) { w.Value = "-1000" }, "authorization.value", evm.ErrAmount},
		{"value hex", func(w *x402.ExactEVMAuthorization) { w.Value = "0x3e8" }, "authorization.value", evm.ErrAmount},
		{"value leading zero", func(w *x402.ExactEVMAuthorization) { w.Value = "01000" }, "authorization.value", evm.ErrAmount},
		{"value 2^256", func(w *x402.ExactEVMAuthorization) { w.Value = twoTo256 }, "authorization.value", evm.ErrAmount},
		{"validAfter empty", func(w *x402.ExactEVMAuthorization) { w.ValidAfter = "" }, "authorization.validAfter", nil},
		{"validAfter leading zero", func(w *x402.ExactEVMAuthorization) { w.ValidAfter = "00" }, "authorization.validAfter", nil},
		{"validAfter negative", func(w *x402.ExactEVMAuthorization) { w.ValidAfter = "-600" }, "authorization.validAfter", nil},
		{"validAfter float", func(w *x402.ExactEVMAuthorization) { w.ValidAfter = "1.5" }, "authorization.validAfter", nil},
		{"validBefore 2^64", func(w *x402.ExactEVMAuthorization) { w.ValidBefore = "18446744073709551616" }, "authorization.validBefore", nil},
		{"validBefore 21 digits", func(w *x402.ExactEVMAuthorization) { w.ValidBefore = "100000000000000000000" }, "authorization.validBefore", nil},
		{"validBefore space", func(w *x402.ExactEVMAuthorization) { w.ValidBefore = " 1795320287" }, "authorization.validBefore", nil},
		{"nonce short", func(w *x402.ExactEVMAuthorization) { w.Nonce = w.Nonce[:65] }, "authorization.nonce", nil},
		{"nonce missing 0x", func(w *x402.ExactEVMAuthorization) { w.Nonce = w.Nonce[2:] + "00" }, "authorization.nonce", nil},
		{"nonce not hex", func(w *x402.ExactEVMAuthorization) { w.Nonce = "0x" + strings.Repeat("q", 64) }, "authorization.nonce", nil},
		{"nonce decimal", func(w *x402.ExactEVMAuthorization) { w.Nonce = "12345" }, "authorization.nonce", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := good
			tc.mutate(&w)
			a, err := evm.ParseAuthorization(w)
			if tc.field != "" {
				if err == nil {
					t.Fatalf("ParseAuthorization(%+v) accepted", w)
				}
				if !strings.HasPrefix(err.Error(), tc.field+": ") {
					t.Fatalf("error %q does not name %s", err, tc.field)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Fatalf("error %q does not wrap %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAuthorization(%+v): %v", w, err)
			}
			// Wire writes the canonical form, which parses back to the same authorization.
			wire := a.Wire()
			back, err := evm.ParseAuthorization(wire)
			if err != nil || back != a {
				t.Fatalf("ParseAuthorization(Wire()) = %+v, %v; want %+v", back, err, a)
			}
			if wire.From != common.HexToAddress(w.From).Hex() || wire.To != common.HexToAddress(w.To).Hex() {
				t.Fatalf("Wire() addresses %s %s are not EIP-55", wire.From, wire.To)
			}
			if wire.Nonce != strings.ToLower(w.Nonce) || wire.Value != w.Value ||
				wire.ValidAfter != w.ValidAfter || wire.ValidBefore != w.ValidBefore {
				t.Fatalf("Wire() = %+v, input %+v", wire, w)
			}
		})
	}
}

func TestClaimKey(t *testing.T) {
	t.Parallel()
	base := authorizationOf(t, oracleAuthorizations[0])
	asset := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	ref := base.ClaimKey(31337, asset)
	if ref != base.ClaimKey(31337, asset) {
		t.Fatal("ClaimKey is not deterministic")
	}
	// The key is the token's replay identity: chain, asset, from, nonce — and nothing else.
	same := []struct {
		name   string
		mutate func(*evm.Authorization)
	}{
		{"to", func(a *evm.Authorization) { a.To[0] ^= 1 }},
		{"value", func(a *evm.Authorization) { a.Value = evm.NewAmount(1) }},
		{"validAfter", func(a *evm.Authorization) { a.ValidAfter++ }},
		{"validBefore", func(a *evm.Authorization) { a.ValidBefore++ }},
	}
	for _, tc := range same {
		t.Run("ignores "+tc.name, func(t *testing.T) {
			t.Parallel()
			a := base
			tc.mutate(&a)
			if a.ClaimKey(31337, asset) != ref {
				t.Fatalf("ClaimKey depends on %s", tc.name)
			}
		})
	}
	differ := []struct {
		name string
		key  func() [32]byte
	}{
		{"chain", func() [32]byte { return base.ClaimKey(31338, asset) }},
		{"asset", func() [32]byte { b := asset; b[19] ^= 1; return base.ClaimKey(31337, b) }},
		{"from", func() [32]byte { a := base; a.From[19] ^= 1; return a.ClaimKey(31337, asset) }},
		{"nonce", func() [32]byte { a := base; a.Nonce[0] ^= 1; return a.ClaimKey(31337, asset) }},
	}
	for _, tc := range differ {
		t.Run("depends on "+tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.key() == ref {
				t.Fatalf("ClaimKey ignores %s", tc.name)
			}
		})
	}
	// It is not the EIP-712 digest (which a signature is over): keys must not be confusable.
	if ref == base.Digest(domainOf(t, oracleDomains[2])) || ref == crypto.Keccak256Hash(base.Nonce[:]) {
		t.Fatal("ClaimKey collides with another hash of the authorization")
	}
}
