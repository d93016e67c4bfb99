package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/quidpay/quid/wallet"
)

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, `Usage: quid audit verify (--address A | --key-file F | --keystore F) [--store DSN]
       quid audit export --format jsonl|csv [--out F] (--address A | ...) [--store DSN]

verify checks the wallet's hash-chained journal: it exits 1 naming the first entry that was
edited, deleted or moved. export writes every entry, amounts in atomic units.`)
	}
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	sub := args[0]
	fs := newFlags("audit "+sub, stderr)
	wf := addWalletFlags(fs, false)
	format := fs.String("format", wallet.FormatJSONL, "export format: jsonl or csv")
	out := fs.String("out", "", "file to export to, created mode 0600 (default: stdout)")
	fs.Usage = func() {
		usage()
		fs.PrintDefaults()
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*format != wallet.FormatJSONL && *format != wallet.FormatCSV) {
		fs.Usage()
		return errUsage
	}
	w, err := wf.open(ctx, false, stderr, wallet.Config{})
	if err != nil {
		return err
	}
	defer w.Close()

	if sub == "verify" {
		n, err := w.VerifyJournal(ctx)
		var broken *wallet.JournalError
		if errors.As(err, &broken) {
			return fmt.Errorf("journal of %s altered: entry %d: %s", w.Address().Hex(), broken.Seq, broken.Reason)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "journal of %s intact: %d entries\n", w.Address().Hex(), n)
		return nil
	}

	if *out == "" {
		return w.ExportJournal(ctx, stdout, *format)
	}
	// A new file only: an export never overwrites an earlier one.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = w.ExportJournal(ctx, f, *format)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
