package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/wallet"
)

func runPay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pay", stderr)
	max := fs.String("max", "", "most this request may cost, in the asset's units, e.g. 0.05 (required)")
	keyFile := fs.String("key-file", "", "file holding the payer's hex private key, mode 0600 (required)")
	method := fs.String("X", http.MethodGet, "HTTP method")
	data := fs.String("d", "", "request body")
	devChain := fs.Uint64("dev-chain-id", 31337, "chain id on which quid's devnet token is trusted (0: none)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid pay URL --max AMOUNT --key-file FILE [flags]")
		fs.PrintDefaults()
	}
	// Accept the URL before or after the flags.
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if url == "" && fs.NArg() == 1 {
		url = fs.Arg(0)
	}
	if url == "" || *max == "" || *keyFile == "" {
		fs.Usage()
		return errUsage
	}
	key, err := wallet.LoadKeyFile(*keyFile)
	if err != nil {
		return err
	}
	assets := evm.DefaultRegistry()
	if *devChain != 0 {
		assets = assets.With(evm.DevToken(*devChain))
	}
	w, err := wallet.New(wallet.Config{
		Key: key, Assets: assets, Max: *max,
		OnPayment: func(p wallet.Payment) {
			if p.Settled {
				fmt.Fprintf(stderr, "paid %s to %s on %s, transaction %s\n", p.Asset.Format(p.Amount), p.PayTo.Hex(), p.Network, p.Transaction)
			} else {
				fmt.Fprintf(stderr, "payment of %s not settled: %s %s\n", p.Asset.Format(p.Amount), p.Reason, p.Transaction)
			}
		},
	})
	if err != nil {
		return err
	}
	var body io.Reader
	if *data != "" {
		body = strings.NewReader(*data)
	}
	req, err := http.NewRequestWithContext(ctx, *method, url, body)
	if err != nil {
		return err
	}
	resp, err := w.Client().Do(req)
	if err != nil {
		if errors.Is(err, wallet.ErrOverMax) {
			return fmt.Errorf("%w (--max %s); nothing was paid", wallet.ErrOverMax, *max)
		}
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
