package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/wallet"
)

func runFacilitator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("facilitator", stderr)
	rpcURL := fs.String("rpc", "", "EVM JSON-RPC endpoint (required), e.g. http://127.0.0.1:8545")
	keyFile := fs.String("key-file", "", "file holding the relayer's hex private key, mode 0600 (required)")
	listen := fs.String("listen", "127.0.0.1:4021", "address of the HTTP API")
	receiptTimeout := fs.Duration("receipt-timeout", facilitator.DefaultReceiptTimeout, "longest wait for a settlement's receipt before answering settlement_pending")
	maxFee := fs.String("max-fee", "", "most ETH (native units) the relayer may spend on gas to settle one payment, e.g. 0.0005; none by default")
	reconcileEvery := fs.Duration("reconcile-every", 30*time.Second, "how often unresolved settlements are reconciled with the chain")
	sf := addStoreFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rpcURL == "" || *keyFile == "" {
		fs.Usage()
		return errUsage
	}
	var feeCap *big.Int
	if *maxFee != "" {
		wei, err := evm.ParseDecimal(*maxFee, 18)
		if err != nil {
			return fmt.Errorf("--max-fee %q: not an amount of ETH", *maxFee)
		}
		feeCap = wei.Big()
	}
	f, closeAll, err := openFacilitator(ctx, *rpcURL, *keyFile, sf, *receiptTimeout, feeCap, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer closeAll()
	// Settle what an earlier run left unresolved before taking new payments, then keep at it.
	if n, err := f.Reconcile(ctx); err != nil {
		fmt.Fprintf(stderr, "reconciling at start: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "reconciled %d settlements left by an earlier run\n", n)
	}
	go f.RunReconciler(ctx, *reconcileEvery)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: f.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute}
	fmt.Fprintf(stdout, "quid facilitator on http://%s for %s, relayer %s\n", ln.Addr(), f.Network(), f.Relayer().Hex())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openFacilitator connects to the chain and the store and returns a facilitator on them, with
// the function that closes both.
func openFacilitator(ctx context.Context, rpcURL, keyFile string, sf storeFlags, receiptTimeout time.Duration, maxFee *big.Int, log *slog.Logger) (*facilitator.Facilitator, func(), error) {
	key, err := wallet.LoadKeyFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(dialCtx, rpcURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", rpcURL, err)
	}
	id, err := client.ChainID(dialCtx)
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("asking %s for its chain id: %w", rpcURL, err)
	}
	db, where, err := sf.open(ctx)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	log.Info("store", "at", where)
	f, err := facilitator.New(facilitator.Config{
		Chain: client, ChainID: id.Uint64(), Relayer: key, Store: db, ReceiptTimeout: receiptTimeout, MaxFee: maxFee, Logger: log,
	})
	if err != nil {
		db.Close()
		client.Close()
		return nil, nil, err
	}
	return f, func() { db.Close(); client.Close() }, nil
}
