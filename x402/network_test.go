package x402_test

import (
	"testing"

	"github.com/quidpay/quid/x402"
)

func TestNetworkChainID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   x402.Network
		want uint64
		ok   bool
	}{
		{"eip155:1", 1, true},
		{"eip155:8453", 8453, true},
		{"eip155:84532", 84532, true},
		{"eip155:31337", 31337, true},
		{"eip155:18446744073709551615", 1<<64 - 1, true},
		{"eip155:0", 0, false},
		{"eip155:00", 0, false},
		{"eip155:01", 0, false},
		{"eip155:031337", 0, false},
		{"eip155:18446744073709551616", 0, false},
		{"eip155:99999999999999999999", 0, false},
		{"eip155:100000000000000000000", 0, false},
		{"eip155:", 0, false},
		{"eip155", 0, false},
		{"eip155:-1", 0, false},
		{"eip155:+1", 0, false},
		{"eip155: 1", 0, false},
		{"eip155:1 ", 0, false},
		{"eip155:0x1", 0, false},
		{"eip155:1.0", 0, false},
		{"eip155:1e3", 0, false},
		{"EIP155:1", 0, false},
		{"eip155:1:2", 0, false},
		{"eip155:８४５३", 0, false},
		{"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", 0, false},
		{"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", 0, false},
		{"base-sepolia", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.in), func(t *testing.T) {
			t.Parallel()
			got, ok := tc.in.ChainID()
			if ok != tc.ok || got != tc.want {
				t.Fatalf("ChainID(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && x402.EIP155(got) != tc.in {
				t.Fatalf("EIP155(%d) = %q, want %q", got, x402.EIP155(got), tc.in)
			}
		})
	}
}

// v1Table is the fixed v1 network table of reference/x402-protocol.md §1.3.
var v1Table = map[string]uint64{
	"ethereum": 1, "sepolia": 11155111, "abstract": 2741, "abstract-testnet": 11124,
	"base-sepolia": 84532, "base": 8453, "avalanche-fuji": 43113, "avalanche": 43114,
	"iotex": 4689, "sei": 1329, "sei-testnet": 1328, "polygon": 137, "polygon-amoy": 80002,
	"peaq": 3338, "story": 1514, "educhain": 41923, "skale-base-sepolia": 324705682,
	"megaeth": 4326, "monad": 143, "stable": 988, "stable-testnet": 2201, "celo": 42220, "flare": 14,
}

func TestV1NetworkNames(t *testing.T) {
	t.Parallel()
	for name, id := range v1Table {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n, ok := x402.NetworkFromV1(name)
			if !ok || n != x402.EIP155(id) {
				t.Fatalf("NetworkFromV1(%q) = %q, %v; want eip155:%d", name, n, ok, id)
			}
			back, ok := n.V1Name()
			if !ok || back != name {
				t.Fatalf("%s.V1Name() = %q, %v; want %q", n, back, ok, name)
			}
		})
	}
	unknown := []string{"", "Base-Sepolia", "BASE", "base-mainnet", "eip155:84532", "solana", "solana-devnet",
		"arbitrum", "localhost", "hardhat", " base"}
	for _, name := range unknown {
		t.Run("unknown/"+name, func(t *testing.T) {
			t.Parallel()
			if n, ok := x402.NetworkFromV1(name); ok {
				t.Fatalf("NetworkFromV1(%q) = %q, want unknown", name, n)
			}
		})
	}
	noName := []x402.Network{"eip155:31337", "eip155:42161", "eip155:0", "eip155:084532",
		"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "base-sepolia", ""}
	for _, n := range noName {
		t.Run("no v1 name/"+string(n), func(t *testing.T) {
			t.Parallel()
			if name, ok := n.V1Name(); ok {
				t.Fatalf("%q.V1Name() = %q, want none", n, name)
			}
		})
	}
}
