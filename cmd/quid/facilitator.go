package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/wallet"
)

func runFacilitator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("facilitator", stderr)
	rpcURL := fs.String("rpc", "", "EVM JSON-RPC endpoint (required), e.g. http://127.0.0.1:8545")
	keyFile := fs.String("key-file", "", "file holding the relayer's hex private key, mode 0600 (required)")
	listen := fs.String("listen", "127.0.0.1:4021", "address of the HTTP API")
	receiptTimeout := fs.Duration("receipt-timeout", facilitator.DefaultReceiptTimeout, "longest wait for a settlement's receipt before answering settlement_pending")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rpcURL == "" || *keyFile == "" {
		fs.Usage()
		return errUsage
	}
	key, err := wallet.LoadKeyFile(*keyFile)
	if err != nil {
		return err
	}
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(dialCtx, *rpcURL)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", *rpcURL, err)
	}
	defer client.Close()
	id, err := client.ChainID(dialCtx)
	if err != nil {
		return fmt.Errorf("asking %s for its chain id: %w", *rpcURL, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	f, err := facilitator.New(facilitator.Config{
		Chain: client, ChainID: id.Uint64(), Relayer: key, ReceiptTimeout: *receiptTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
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
