package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
)

func runDevchain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devchain", stderr)
	port := fs.Int("port", 8545, "port of the JSON-RPC endpoint on 127.0.0.1")
	chainID := fs.Uint64("chain-id", 31337, "chain id")
	if err := parse(fs, args); err != nil {
		return err
	}
	chain, err := devnet.Start(devnet.Config{ChainID: *chainID})
	if err != nil {
		return err
	}
	defer chain.Close()
	url, err := chain.Serve(net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	token := evm.DevToken(chain.ChainID())
	fmt.Fprintf(stdout, "quid devchain: Ethereum JSON-RPC at %s\n\n  chain id  %d\n  token     %s  %s, %d decimals, EIP-712 %q version %q (EIP-3009, EIP-2612)\n\n",
		url, chain.ChainID(), token.Address.Hex(), token.Symbol, token.Decimals, token.Name, token.Version)
	printTestKeys(stdout, chain.Accounts())
	fmt.Fprintln(stdout, "\nBlocks are mined as soon as a transaction arrives. Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
