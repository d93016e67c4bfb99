package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/proxy"
	"github.com/quidpay/quid/store"
)

// errConfig reports a configuration with errors, already printed with their lines.
var errConfig = errors.New("configuration has errors")

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("proxy", stderr)
	file := fs.String("config", "quid.yaml", "the proxy's YAML configuration (see examples/quid.yaml)")
	check := fs.Bool("check", false, "validate the configuration, print every error with its line, and exit")
	dev := fs.Bool("dev", false, "settle on a local chain run in this process, with an in-process facilitator (the file's facilitator is ignored)")
	data := fs.String("data", defaultDataDir(), "data directory of the embedded SQLite store, when the file names no store")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid proxy --config quid.yaml [--check] [--dev]\n\nServes a paywall in front of an HTTP upstream. SIGHUP reloads the configuration;\na configuration with errors is refused and the running one keeps serving.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := proxy.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errConfig
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok, %d routes\n", cfg.File, len(cfg.Routes))
		return nil
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := proxy.Options{Logger: log}
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	switch {
	case *dev:
		if _, ok := evm.DefaultRegistry().USD(cfg.ChainID); ok {
			// "$" prices would name the real USDC of that chain, which the local chain lacks.
			fmt.Fprintf(stderr, "%s: chain_id %d is a public chain; --dev runs a local one (use %d)\n", cfg.File, cfg.ChainID, devnet.DefaultChainID)
			return errConfig
		}
		chain, err := devnet.Start(devnet.Config{ChainID: cfg.ChainID})
		if err != nil {
			return fmt.Errorf("starting the local chain: %w", err)
		}
		closers = append(closers, func() { chain.Close() })
		fac, err := facilitator.New(facilitator.Config{Chain: chain.Client(), ChainID: chain.ChainID(), Relayer: chain.Accounts()[relayerAccount].Key, Logger: log})
		if err != nil {
			return err
		}
		opts.Facilitator, opts.Balances = fac, paywall.ChainBalances(chain.Client())
		fmt.Fprintf(stdout, "local chain %d with qUSD at %s; the buyer account is devnet account %d (PUBLIC TEST KEYS, never use them elsewhere)\n",
			chain.ChainID(), evm.DevTokenAddress.Hex(), buyerAccount)
	case cfg.Facilitator == "":
		fmt.Fprintf(stderr, "%s: facilitator: required unless --dev\n", cfg.File)
		return errConfig
	case cfg.RPC != "":
		client, err := ethclient.DialContext(ctx, cfg.RPC)
		if err != nil {
			return fmt.Errorf("rpc: %w", err)
		}
		closers = append(closers, client.Close)
		opts.Balances = paywall.ChainBalances(client)
	}

	dsn := cfg.Store
	if dsn == "" {
		dsn = filepath.Join(*data, "quid.db")
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	closers = append(closers, func() { db.Close() })
	opts.Store = db

	p, err := proxy.New(cfg, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errConfig
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	servers := []*http.Server{{Handler: p, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	if cfg.Admin != nil && cfg.Admin.Listen != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin: %w", err)
		}
		servers = append(servers, &http.Server{Handler: p.Admin(), ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, aln)
		fmt.Fprintf(stdout, "admin API on http://%s\n", aln.Addr())
	}
	// Caught before the address is announced: a SIGHUP's default action ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	fmt.Fprintf(stdout, "quid proxy on http://%s, %d routes from %s\n", ln.Addr(), len(cfg.Routes), cfg.File)

	for {
		select {
		case <-hup:
			// Reload logs what it did, and a refusal with each error's line.
			p.Reload()
			continue
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		break
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
