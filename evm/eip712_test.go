package evm_test

import (
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// oracleDomains are the domains every digest test runs under: the chains x402 is used on and the
// devnet's, and names that stress the string hashing.
var oracleDomains = []evm.OracleDomain{
	{Name: "USD Coin", Version: "2", ChainID: 1, VerifyingContract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
	{Name: "USD Coin", Version: "2", ChainID: 8453, VerifyingContract: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"},
	{Name: "USD Coin", Version: "2", ChainID: 31337, VerifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
	{Name: "USDC", Version: "2", ChainID: 84532, VerifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"},
	{Name: "Quid Test USD", Version: "1", ChainID: 31337, VerifyingContract: "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
	{Name: strings.Repeat("A very long token name that spans several Keccak blocks. ", 20), Version: "2.2.0-beta+ünïcode", ChainID: 8453, VerifyingContract: "0x0000000000000000000000000000000000000001"},
	{Name: "x", Version: "1", ChainID: 9007199254740993, VerifyingContract: "0xffffffffffffffffffffffffffffffffffffffff"},
}

// oracleAuthorizations are the messages every digest test signs.
var oracleAuthorizations = []evm.OracleAuthorization{
	{ // the captured @x402/fetch payload of reference/x402-protocol.md §1.1
		From: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", To: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		Value: "1000", ValidAfter: "0", ValidBefore: "1795320287",
		Nonce: "0x44dec795aea5cea4e9375a5636427c3d56efaf1b9f308ba3f27706272366aa3a",
	},
	{ // a v1 client's validAfter = now-600
		From: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", To: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
		Value: "10000", ValidAfter: "1795319627", ValidBefore: "1795320287",
		Nonce: "0x04d2000000000000000000000000000000000000000000000000000000000000",
	},
	{ // every field at its maximum
		From: "0xffffffffffffffffffffffffffffffffffffffff", To: "0xffffffffffffffffffffffffffffffffffffffff",
		Value: maxUint256, ValidAfter: "18446744073709551615", ValidBefore: "18446744073709551615",
		Nonce: "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	},
	{ // every field zero
		From: "0x0000000000000000000000000000000000000000", To: "0x0000000000000000000000000000000000000000",
		Value: "0", ValidAfter: "0", ValidBefore: "0",
		Nonce: "0x0000000000000000000000000000000000000000000000000000000000000000",
	},
}

func domainOf(t testing.TB, d evm.OracleDomain) evm.Domain {
	t.Helper()
	addr, err := evm.ParseAddress(d.VerifyingContract)
	if err != nil {
		t.Fatal(err)
	}
	return evm.Domain{Name: d.Name, Version: d.Version, ChainID: uint64(d.ChainID), VerifyingContract: addr}
}

func authorizationOf(t testing.TB, a evm.OracleAuthorization) evm.Authorization {
	t.Helper()
	auth, err := evm.ParseAuthorization(x402.ExactEVMAuthorization(a))
	if err != nil {
		t.Fatalf("ParseAuthorization(%+v): %v", a, err)
	}
	return auth
}

func TestTypeHashes(t *testing.T) {
	t.Parallel()
	// The typehash the x402 reference quotes (reference/x402-protocol.md §3.1).
	want := common.HexToHash("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
	if evm.TransferWithAuthorizationTypeHash != want {
		t.Fatalf("TransferWithAuthorizationTypeHash = %s, want %s", evm.TransferWithAuthorizationTypeHash, want)
	}
	td := evm.OracleTypedData(oracleDomains[0], oracleAuthorizations[0])
	if got := td.TypeHash("TransferWithAuthorization"); common.BytesToHash(got) != want {
		t.Fatalf("apitypes typehash = %x, want %s", got, want)
	}
}

func TestDomainSeparator(t *testing.T) {
	t.Parallel()
	for _, od := range oracleDomains {
		t.Run(od.Name[:min(len(od.Name), 20)]+"/"+od.VerifyingContract[:8], func(t *testing.T) {
			t.Parallel()
			want, _ := evm.OracleDigest(t, od, oracleAuthorizations[0])
			d := domainOf(t, od)
			if got := evm.ComputeSeparator(d); got != want {
				t.Fatalf("computeSeparator = %x, want %x", got, want)
			}
			// First call fills the cache, the second reads it; both must be right.
			for i := range 2 {
				if got := d.Separator(); got != want {
					t.Fatalf("Separator (call %d) = %x, want %x", i, got, want)
				}
			}
		})
	}
}

func TestAuthorizationDigest(t *testing.T) {
	t.Parallel()
	for i, od := range oracleDomains {
		for j, oa := range oracleAuthorizations {
			t.Run(string(rune('a'+i))+string(rune('0'+j)), func(t *testing.T) {
				t.Parallel()
				_, want := evm.OracleDigest(t, od, oa)
				a := authorizationOf(t, oa)
				if got := a.Digest(domainOf(t, od)); got != want {
					t.Fatalf("Digest = %x, want %x (domain %+v, authorization %+v)", got, want, od, oa)
				}
			})
		}
	}
}

func TestDigestSeparatesEveryField(t *testing.T) {
	t.Parallel()
	base := authorizationOf(t, oracleAuthorizations[0])
	dom := domainOf(t, oracleDomains[2])
	ref := base.Digest(dom)
	tests := []struct {
		name   string
		mutate func(*evm.Authorization, *evm.Domain)
	}{
		{"from", func(a *evm.Authorization, _ *evm.Domain) { a.From[19] ^= 1 }},
		{"to", func(a *evm.Authorization, _ *evm.Domain) { a.To[0] ^= 1 }},
		{"value", func(a *evm.Authorization, _ *evm.Domain) { a.Value = evm.NewAmount(1001) }},
		{"validAfter", func(a *evm.Authorization, _ *evm.Domain) { a.ValidAfter++ }},
		{"validBefore", func(a *evm.Authorization, _ *evm.Domain) { a.ValidBefore++ }},
		{"nonce", func(a *evm.Authorization, _ *evm.Domain) { a.Nonce[31] ^= 1 }},
		{"domain name", func(_ *evm.Authorization, d *evm.Domain) { d.Name = "USDC" }},
		{"domain version", func(_ *evm.Authorization, d *evm.Domain) { d.Version = "1" }},
		{"domain chain", func(_ *evm.Authorization, d *evm.Domain) { d.ChainID = 31338 }},
		{"domain contract", func(_ *evm.Authorization, d *evm.Domain) { d.VerifyingContract[5] ^= 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, d := base, dom
			tc.mutate(&a, &d)
			if a.Digest(d) == ref {
				t.Fatalf("changing %s does not change the digest", tc.name)
			}
		})
	}
}

func TestSeparatorCacheBoundsMemory(t *testing.T) {
	t.Parallel()
	// A domain whose strings are large must not be kept: domains come from requirements
	// anyone can post, so the cache must bound bytes, not only entries.
	huge := evm.Domain{Name: strings.Repeat("n", 60<<10), Version: "2", ChainID: 1}
	want := crypto.Keccak256Hash(
		crypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")),
		crypto.Keccak256([]byte(huge.Name)),
		crypto.Keccak256([]byte("2")),
		common.LeftPadBytes([]byte{1}, 32),
		make([]byte, 32),
	)
	if got := huge.Separator(); got != want {
		t.Fatalf("Separator of a huge domain = %x, want %x", got, want)
	}
	if evm.SeparatorCached(huge) {
		t.Fatal("a domain with a 60 KiB name was cached")
	}
	small := evm.Domain{Name: "Cache Probe", Version: "2", ChainID: 77777}
	small.Separator()
	if !evm.SeparatorCached(small) {
		t.Fatal("an ordinary domain was not cached")
	}
}
