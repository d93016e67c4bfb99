package evm_test

import (
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
)

func TestRegistryParsePrice(t *testing.T) {
	t.Parallel()
	other := evm.Asset{ChainID: 8453, Address: common.HexToAddress("0x1111111111111111111111111111111111111111"),
		Symbol: "WETH", Decimals: 18, Name: "Wrapped Ether", Version: "1"}
	reg := evm.DefaultRegistry().With(other)
	tests := []struct {
		name    string
		chainID uint64
		price   string
		asset   evm.Asset // zero Asset means refused
		atomic  string
	}{
		{"dollar cent on Base", 8453, "$0.01", evm.USDCBase, "10000"},
		{"dollar on Base Sepolia", 84532, "$1", evm.USDCBaseSepolia, "1000000"},
		{"USD suffix", 8453, "0.01 USD", evm.USDCBase, "10000"},
		{"surrounding spaces", 8453, "  $0.001  ", evm.USDCBase, "1000"},
		{"space after $", 8453, "$ 2.50", evm.USDCBase, "2500000"},
		{"smallest unit", 8453, "$0.000001", evm.USDCBase, "1"},
		{"free", 8453, "$0", evm.USDCBase, "0"},
		{"atomic, registered", 8453, "1000 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", evm.USDCBase, "1000"},
		{"atomic, lower-case address", 8453, "1000 0x833589fcd6edb6e08f4c7c32d4f71b54bda02913", evm.USDCBase, "1000"},
		{"atomic, non-USD asset", 8453, "5 0x1111111111111111111111111111111111111111", other, "5"},
		{"too precise", 8453, "$0.0000001", evm.Asset{}, ""},
		{"no USD asset on chain", 31337, "$0.01", evm.Asset{}, ""},
		{"no USD asset on chain, suffix", 1, "1 USD", evm.Asset{}, ""},
		{"negative", 8453, "$-1", evm.Asset{}, ""},
		{"trailing dot", 8453, "$1.", evm.Asset{}, ""},
		{"empty", 8453, "", evm.Asset{}, ""},
		{"only $", 8453, "$", evm.Asset{}, ""},
		{"bare number", 8453, "1000", evm.Asset{}, ""},
		{"lower-case usd", 8453, "0.01 usd", evm.Asset{}, ""},
		{"euro", 8453, "€1", evm.Asset{}, ""},
		{"atomic, unregistered asset", 8453, "1000 0x2222222222222222222222222222222222222222", evm.Asset{}, ""},
		{"atomic, registered on another chain", 84532, "1000 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", evm.Asset{}, ""},
		{"atomic, bad address", 8453, "1000 0x8335", evm.Asset{}, ""},
		{"atomic, decimal amount", 8453, "0.5 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", evm.Asset{}, ""},
		{"atomic, negative", 8453, "-1 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", evm.Asset{}, ""},
		{"atomic, reversed", 8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913 1000", evm.Asset{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			asset, amount, err := reg.ParsePrice(tc.chainID, tc.price)
			if tc.atomic == "" {
				if !errors.Is(err, evm.ErrPrice) {
					t.Fatalf("ParsePrice(%d, %q) = %+v, %s, %v; want ErrPrice", tc.chainID, tc.price, asset, amount, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrice(%d, %q): %v", tc.chainID, tc.price, err)
			}
			if asset != tc.asset || amount.String() != tc.atomic {
				t.Fatalf("ParsePrice(%d, %q) = %s of %+v, want %s of %+v", tc.chainID, tc.price, amount, asset, tc.atomic, tc.asset)
			}
		})
	}
}

func TestRegistryWithDoesNotMutate(t *testing.T) {
	t.Parallel()
	base := evm.DefaultRegistry()
	dev := evm.DevToken(31337)
	// A second USD asset on Base must not displace USDC as Base's default.
	usdt := evm.Asset{ChainID: 8453, Address: common.HexToAddress("0x3333333333333333333333333333333333333333"),
		Symbol: "USDT", Decimals: 6, Name: "Tether", Version: "1", USD: true}
	// Re-registering USDC with another domain version replaces it in the copy only.
	usdc2 := evm.USDCBase
	usdc2.Version = "3"
	ext := base.With(dev, usdt, usdc2)

	if _, ok := base.Lookup(31337, evm.DevTokenAddress); ok {
		t.Fatal("With added the dev token to the original registry")
	}
	if _, ok := base.USD(31337); ok {
		t.Fatal("With gave the original registry a default for 31337")
	}
	if _, ok := base.Lookup(8453, usdt.Address); ok {
		t.Fatal("With added USDT to the original registry")
	}
	if a, _ := base.Lookup(8453, evm.USDCBase.Address); a.Version != "2" {
		t.Fatalf("With changed the original's USDC to version %q", a.Version)
	}
	if _, _, err := base.ParsePrice(31337, "$1"); err == nil {
		t.Fatal("original registry prices dollars on 31337 after With")
	}

	if a, ok := ext.Lookup(31337, evm.DevTokenAddress); !ok || a != dev {
		t.Fatalf("copy lacks the dev token: %+v, %v", a, ok)
	}
	if a, ok := ext.USD(31337); !ok || a != dev {
		t.Fatalf("copy's default on 31337 = %+v, %v", a, ok)
	}
	if a, ok := ext.USD(8453); !ok || a.Address != evm.USDCBase.Address {
		t.Fatalf("copy's default on Base = %+v; the first USD asset must stay the default", a)
	}
	if a, _ := ext.Lookup(8453, evm.USDCBase.Address); a.Version != "3" {
		t.Fatalf("copy's USDC version = %q, want 3", a.Version)
	}
	if a, ok := ext.USD(84532); !ok || a != evm.USDCBaseSepolia {
		t.Fatal("copy lost Base Sepolia's default")
	}
	asset, amount, err := ext.ParsePrice(31337, "$0.01")
	if err != nil || asset != dev || amount.String() != "10000" {
		t.Fatalf("copy ParsePrice = %+v %s %v", asset, amount, err)
	}
}

func TestNewRegistryDefaults(t *testing.T) {
	t.Parallel()
	notUSD := evm.Asset{ChainID: 10, Address: common.HexToAddress("0x4444444444444444444444444444444444444444"), Decimals: 18}
	usd := evm.Asset{ChainID: 10, Address: common.HexToAddress("0x5555555555555555555555555555555555555555"), Decimals: 6, USD: true}
	r := evm.NewRegistry(notUSD, usd)
	if a, ok := r.USD(10); !ok || a != usd {
		t.Fatalf("USD(10) = %+v, %v; a non-USD asset must never be the dollar default", a, ok)
	}
	if _, ok := evm.NewRegistry(notUSD).USD(10); ok {
		t.Fatal("a registry with no USD asset has a dollar default")
	}
}

func TestAssetDomainAndFormat(t *testing.T) {
	t.Parallel()
	d := evm.USDCBaseSepolia.Domain()
	want := evm.Domain{Name: "USDC", Version: "2", ChainID: 84532,
		VerifyingContract: common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e")}
	if d != want {
		t.Fatalf("Domain() = %+v, want %+v", d, want)
	}
	if b := evm.USDCBase.Domain(); b.Name != "USD Coin" || b.ChainID != 8453 {
		t.Fatalf("Base USDC domain = %+v", b)
	}
	if got := evm.USDCBase.Format(evm.NewAmount(10000)); got != "0.01 USDC" {
		t.Fatalf("Format = %q", got)
	}
	dev := evm.DevToken(31337)
	if dev.Address != evm.DevTokenAddress || dev.Decimals != 6 || !dev.USD || dev.ChainID != 31337 {
		t.Fatalf("DevToken = %+v", dev)
	}
}
