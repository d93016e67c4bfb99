package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/store"
)

func runSettlements(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reconcile" {
		return runReconcile(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("settlements", stderr)
	state := fs.String("state", "", "only settlements in this state: pending (submitted or unknown), unknown, failed, confirmed, verified")
	limit := fs.Int("limit", 50, "most settlements to list, newest first")
	sf := addStoreFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid settlements [--state S] [--limit N] [--data DIR | --store URL]\n       quid settlements reconcile --rpc URL --key-file F [--data DIR | --store URL]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	var states []store.State
	switch *state {
	case "":
	case "pending":
		states = []store.State{store.StateSubmitted, store.StateUnknown}
	case "unknown", "failed", "confirmed", "verified", "submitted":
		states = []store.State{store.State(*state)}
	default:
		fs.Usage()
		return errUsage
	}
	db, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := db.List(ctx, store.Filter{States: states, Limit: *limit})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPDATED\tSTATE\tNETWORK\tPAYER\tPAY TO\tAMOUNT\tTRANSACTION\tREASON\tID")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Updated.UTC().Format(time.DateTime), s.State, s.Network,
			s.Payer, s.PayTo, s.Amount, orDash(s.Tx), orDash(s.Reason), hex.EncodeToString(s.Key[:8]))
	}
	tw.Flush()
	if len(list) == 0 {
		fmt.Fprintln(stdout, "(none)")
	}
	return nil
}

func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("settlements reconcile", stderr)
	rpcURL := fs.String("rpc", "", "EVM JSON-RPC endpoint (required)")
	keyFile := fs.String("key-file", "", "file holding the relayer's hex private key, mode 0600 (required)")
	sf := addStoreFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rpcURL == "" || *keyFile == "" {
		fs.Usage()
		return errUsage
	}
	f, closeAll, err := openFacilitator(ctx, *rpcURL, *keyFile, sf, facilitator.DefaultReceiptTimeout, nil, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer closeAll()
	n, err := f.Reconcile(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d settlements resolved\n", n)
	return nil
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
