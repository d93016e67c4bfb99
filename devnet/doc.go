// Package devnet runs quid's local development chain in-process: go-ethereum's simulated
// backend with a configurable chain id, funded well-known test accounts and the QuidToken test
// stablecoin (qUSD, EIP-3009) deployed at a fixed address.
//
// It owns the chain's lifecycle, mining on demand (a block is sealed as soon as a transaction is
// sent, so nobody calls Commit), keeping block timestamps close to the wall clock (the token
// checks EIP-3009 validity windows against block.timestamp while facilitators check them against
// real time), and standard Ethereum JSON-RPC for other processes and ecosystems' tools (viem,
// ethers) on a loopback HTTP endpoint.
//
// It must never be used for real value or reached from outside the machine: its accounts are the
// public Hardhat/anvil test keys, Serve refuses any non-loopback address, and it holds no other
// secrets. It knows nothing about x402, payments or facilitators; those talk to it as they would
// to any EVM chain, through RPC, Client or the URL Serve returns.
package devnet
