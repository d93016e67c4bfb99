// Command quid runs the parts of quid: a self-contained demo, a local development stack, a local
// chain, a facilitator, and a client that pays.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"demo", "run a local chain, facilitator and paid API, and pay for a few calls", runDemo},
	{"dev", "run the local stack (chain, facilitator, paid API) until interrupted", runDev},
	{"devchain", "serve only the local chain over JSON-RPC on 127.0.0.1", runDevchain},
	{"facilitator", "serve the facilitator HTTP API against an EVM JSON-RPC endpoint", runFacilitator},
	{"pay", "fetch a URL, paying its 402 within the wallet's policy", runPay},
	{"wallet", "show balances, budgets, pending approvals and recent payments; approve or deny", runWallet},
	{"audit", "verify or export the wallet's hash-chained audit journal", runAudit},
	{"proxy", "serve a paywall reverse proxy in front of an HTTP upstream, from a YAML config", runProxy},
	{"settlements", "list settlements, or reconcile the unresolved ones with the chain", runSettlements},
	{"bench", "measure the cost of a paid request against unpaid, the ECDSA floor and the TypeScript stack", runBench},
}

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext is cancelled by SIGINT or SIGTERM, so commands shut down cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "quid %s: %v\n", c.name, err)
		// A command may choose its code so scripts and agents can tell its failures apart.
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			return coded.ExitCode()
		}
		return 1
	}
	fmt.Fprintf(stderr, "quid: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage reports bad flags; the flag package has already said what was wrong.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "quid — pay and get paid over HTTP 402\n\nUsage: quid <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'quid <command> -h' for a command's flags.")
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("quid "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
