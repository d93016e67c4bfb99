package evm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Asset is a token quid knows. Its decimals and EIP-712 domain come from here, never from a
// counterparty: a server that claimed 18 decimals for a 6-decimal token could otherwise inflate a
// price a millionfold.
type Asset struct {
	ChainID  uint64
	Address  common.Address
	Symbol   string
	Decimals uint8
	// Name and Version are the token's EIP-712 domain name and version.
	Name    string
	Version string
	// USD marks a dollar stablecoin, which "$" prices may use.
	USD bool
}

// Domain returns the EIP-712 domain of the token.
func (a Asset) Domain() Domain {
	return Domain{Name: a.Name, Version: a.Version, ChainID: a.ChainID, VerifyingContract: a.Address}
}

// Format writes an amount of the asset for people, e.g. "0.01 USDC".
func (a Asset) Format(v Amount) string { return v.Decimal(a.Decimals) + " " + a.Symbol }

type assetKey struct {
	chainID uint64
	addr    common.Address
}

// Registry is an immutable set of trusted assets. The first dollar stablecoin registered for a
// chain is its default for "$" prices.
type Registry struct {
	assets   map[assetKey]Asset
	defaults map[uint64]Asset
}

// NewRegistry returns a registry of the given assets.
func NewRegistry(assets ...Asset) *Registry {
	r := &Registry{assets: map[assetKey]Asset{}, defaults: map[uint64]Asset{}}
	for _, a := range assets {
		r.add(a)
	}
	return r
}

func (r *Registry) add(a Asset) {
	r.assets[assetKey{a.ChainID, a.Address}] = a
	if _, ok := r.defaults[a.ChainID]; !ok && a.USD {
		r.defaults[a.ChainID] = a
	}
}

// With returns a copy of the registry with more assets.
func (r *Registry) With(assets ...Asset) *Registry {
	c := NewRegistry()
	for _, a := range r.assets {
		c.assets[assetKey{a.ChainID, a.Address}] = a
	}
	for id, a := range r.defaults {
		c.defaults[id] = a
	}
	for _, a := range assets {
		c.add(a)
	}
	return c
}

// Lookup returns the asset at addr on a chain.
func (r *Registry) Lookup(chainID uint64, addr common.Address) (Asset, bool) {
	a, ok := r.assets[assetKey{chainID, addr}]
	return a, ok
}

// USD returns the default dollar stablecoin of a chain.
func (r *Registry) USD(chainID uint64) (Asset, bool) {
	a, ok := r.defaults[chainID]
	return a, ok
}

// ErrPrice reports a price that cannot be read.
var ErrPrice = errors.New("evm: invalid price")

// ParsePrice reads a price on a chain: "$0.01" (or "0.01 USD") in the chain's default dollar
// stablecoin, or "1000 0x…" in atomic units of a registered asset.
func (r *Registry) ParsePrice(chainID uint64, price string) (Asset, Amount, error) {
	price = strings.TrimSpace(price)
	usd, isUSD := strings.CutPrefix(price, "$")
	if !isUSD {
		usd, isUSD = strings.CutSuffix(price, " USD")
	}
	if isUSD {
		a, ok := r.USD(chainID)
		if !ok {
			return Asset{}, Amount{}, fmt.Errorf("%w: no dollar stablecoin registered for chain %d", ErrPrice, chainID)
		}
		v, err := ParseDecimal(strings.TrimSpace(usd), a.Decimals)
		if err != nil {
			return Asset{}, Amount{}, fmt.Errorf("%w: %q is not an amount of %s with at most %d decimals", ErrPrice, usd, a.Symbol, a.Decimals)
		}
		return a, v, nil
	}
	atomic, addr, ok := strings.Cut(price, " ")
	if !ok {
		return Asset{}, Amount{}, fmt.Errorf("%w: %q is neither \"$1.00\" nor \"<atomic units> <asset address>\"", ErrPrice, price)
	}
	asset, err := ParseAddress(strings.TrimSpace(addr))
	if err != nil {
		return Asset{}, Amount{}, fmt.Errorf("%w: %v", ErrPrice, err)
	}
	a, ok := r.Lookup(chainID, asset)
	if !ok {
		return Asset{}, Amount{}, fmt.Errorf("%w: asset %s is not registered on chain %d", ErrPrice, asset.Hex(), chainID)
	}
	v, err := ParseAmount(atomic)
	if err != nil {
		return Asset{}, Amount{}, fmt.Errorf("%w: %q is not a count of atomic units", ErrPrice, atomic)
	}
	return a, v, nil
}

// Well-known USDC deployments, with the EIP-712 domains they actually use.
var (
	USDCBase = Asset{ChainID: 8453, Address: common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
		Symbol: "USDC", Decimals: 6, Name: "USD Coin", Version: "2", USD: true}
	USDCBaseSepolia = Asset{ChainID: 84532, Address: common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
		Symbol: "USDC", Decimals: 6, Name: "USDC", Version: "2", USD: true}
)

// DevToken returns the asset of quid's test stablecoin as the devnet deploys it on chainID.
func DevToken(chainID uint64) Asset {
	return Asset{ChainID: chainID, Address: DevTokenAddress, Symbol: "qUSD", Decimals: 6,
		Name: "Quid Test USD", Version: "2", USD: true}
}

// DevTokenAddress is where the devnet deploys its token: the first contract of the well-known
// first test account.
var DevTokenAddress = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")

// DefaultRegistry knows USDC on Base and Base Sepolia.
func DefaultRegistry() *Registry { return NewRegistry(USDCBase, USDCBaseSepolia) }
