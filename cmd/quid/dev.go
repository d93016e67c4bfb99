package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	chainID := fs.Uint64("chain-id", 31337, "chain id of the embedded chain")
	rpc := fs.String("rpc-listen", "127.0.0.1:8545", "loopback address of the chain's JSON-RPC")
	fac := fs.String("facilitator-listen", "127.0.0.1:4021", "loopback address of the facilitator API")
	api := fs.String("api-listen", "127.0.0.1:4020", "loopback address of the paid demo API")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := startStack(stackConfig{chainID: *chainID, rpcAddr: *rpc, facilitatorAddr: *fac, apiAddr: *api})
	if err != nil {
		return err
	}
	defer s.Close()
	token := evm.DevToken(s.chain.ChainID())
	fmt.Fprintf(stdout, "quid dev stack running\n\n  chain JSON-RPC   %s  (chain id %d)\n  facilitator      %s  (POST /verify, POST /settle, GET /supported)\n  paid API         %s  (GET /weather $0.01, /quote $0.005, /report $0.25)\n  token            %s  %s, %d decimals, EIP-712 %q version %q\n\n",
		s.rpcURL, s.chain.ChainID(), s.facilitatorURL, s.apiURL, token.Address.Hex(), token.Symbol, token.Decimals, token.Name, token.Version)
	printTestKeys(stdout, s.chain.Accounts())
	fmt.Fprintf(stdout, "\nTry: quid pay %s/weather --max 0.05 --key-file <file holding the buyer's test key>\nPress Ctrl-C to stop.\n", s.apiURL)
	<-ctx.Done()
	return nil
}

// printTestKeys lists the devnet's funded accounts. Their keys are the public, well-known test
// keys of local Ethereum tooling: anyone can spend from them on any chain.
func printTestKeys(w io.Writer, accounts []devnet.Account) {
	roles := map[int]string{0: "deployer", sellerAccount: "seller (payTo)", buyerAccount: "buyer", relayerAccount: "facilitator relayer"}
	fmt.Fprintln(w, "  Funded accounts — PUBLIC TEST KEYS, never use them on a real network:")
	for i, a := range accounts {
		fmt.Fprintf(w, "  %2d  %s  0x%x  %s\n", i, a.Address.Hex(), crypto.FromECDSA(a.Key), roles[i])
	}
}
