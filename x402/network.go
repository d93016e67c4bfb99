package x402

import (
	"strconv"
	"strings"
)

// Network is a CAIP-2 chain identifier as v2 writes it, e.g. "eip155:8453".
type Network string

// EIP155 returns the network of an EVM chain id.
func EIP155(chainID uint64) Network {
	return Network("eip155:" + strconv.FormatUint(chainID, 10))
}

// ChainID returns the EVM chain id of an "eip155:<id>" network, and false for anything else.
func (n Network) ChainID() (uint64, bool) {
	ref, ok := strings.CutPrefix(string(n), "eip155:")
	if !ok || ref == "" || len(ref) > 20 || (len(ref) > 1 && ref[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(ref); i++ {
		if ref[i] < '0' || ref[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(ref, 10, 64)
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}

// v1Networks is the fixed name table of x402 v1, which has no way to name other chains.
var v1Networks = map[string]uint64{
	"ethereum":           1,
	"sepolia":            11155111,
	"abstract":           2741,
	"abstract-testnet":   11124,
	"base-sepolia":       84532,
	"base":               8453,
	"avalanche-fuji":     43113,
	"avalanche":          43114,
	"iotex":              4689,
	"sei":                1329,
	"sei-testnet":        1328,
	"polygon":            137,
	"polygon-amoy":       80002,
	"peaq":               3338,
	"story":              1514,
	"educhain":           41923,
	"skale-base-sepolia": 324705682,
	"megaeth":            4326,
	"monad":              143,
	"stable":             988,
	"stable-testnet":     2201,
	"celo":               42220,
	"flare":              14,
}

// NetworkFromV1 returns the CAIP-2 network of a v1 network name.
func NetworkFromV1(name string) (Network, bool) {
	id, ok := v1Networks[name]
	if !ok {
		return "", false
	}
	return EIP155(id), true
}

// V1Name returns the v1 name of an EVM network, and false when v1 has no name for it.
func (n Network) V1Name() (string, bool) {
	id, ok := n.ChainID()
	if !ok {
		return "", false
	}
	for name, v := range v1Networks {
		if v == id {
			return name, true
		}
	}
	return "", false
}
