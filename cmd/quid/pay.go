package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/term"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
)

// Exit codes of quid pay that an agent can act on, beyond 0 (paid and served), 1 (error) and 2
// (usage).
const (
	// exitApprovalPending: a human must approve; the message says how, then retry with --approval.
	exitApprovalPending = 3
	// exitRefused: the policy refused the payment (budget, allowlist, expected price, duplicate,
	// denied approval); the message names the rule. Nothing was paid.
	exitRefused = 4
	// exitNotServed: paid or not, the server did not answer 2xx; its body is on stdout.
	exitNotServed = 5
)

// exitError is an error with the exit code quid should end with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for the error.
func (e *exitError) ExitCode() int { return e.code }

// walletFlags are the flags that choose a wallet: its key (or only its address), its store and
// its policy.
type walletFlags struct {
	address, keyFile, keystore, passFile, store, policy *string
	devChain                                            *uint64
}

// addWalletFlags adds the flags naming a wallet. A payer (withKey) gives its key and, for a
// keystore, its passphrase; an administrator gives the wallet's address, a key file or a
// keystore, whose address is read without the passphrase.
func addWalletFlags(fs *flag.FlagSet, withKey bool) walletFlags {
	none := ""
	f := walletFlags{
		keyFile:  fs.String("key-file", "", "file holding the payer's hex private key, mode 0600"),
		keystore: fs.String("keystore", "", "encrypted keystore file (go-ethereum format), mode 0600"),
		address:  &none,
		passFile: &none,
		store:    fs.String("store", defaultWalletStore(), "the wallet's store: a SQLite file, or postgres://… to share budgets between agents"),
		policy:   fs.String("policy", "", "policy YAML file (see examples/policy.yaml)"),
		devChain: fs.Uint64("dev-chain-id", 31337, "chain id on which quid's devnet token is trusted (0: none)"),
	}
	if withKey {
		f.passFile = fs.String("passphrase-file", "", "file holding the keystore's passphrase, mode 0600 (else $QUID_PASSPHRASE, else a prompt)")
	} else {
		f.address = fs.String("address", "", "the wallet's address")
	}
	return f
}

// defaultWalletStore is $QUID_DATA/wallet.db, else $XDG_DATA_HOME/quid/wallet.db, else
// ~/.local/share/quid/wallet.db.
func defaultWalletStore() string {
	if d := os.Getenv("QUID_DATA"); d != "" {
		return filepath.Join(d, "wallet.db")
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "quid", "wallet.db")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "quid", "wallet.db")
	}
	return "wallet.db"
}

// assets are the tokens the CLI's wallets trust.
func (f walletFlags) assets() []evm.Asset {
	list := []evm.Asset{evm.USDCBase, evm.USDCBaseSepolia}
	if *f.devChain != 0 {
		list = append(list, evm.DevToken(*f.devChain))
	}
	return list
}

// openedWallet is a wallet with the store it keeps its ledger in.
type openedWallet struct {
	*wallet.Wallet
	db    *store.DB
	where string
}

func (o *openedWallet) Close() error { return o.db.Close() }

// open opens the wallet. With needKey, it loads the key (asking for a keystore's passphrase);
// otherwise only the address is needed: --address, the key file's key, or the address a
// keystore declares.
func (f walletFlags) open(ctx context.Context, needKey bool, stderr io.Writer, cfg wallet.Config) (*openedWallet, error) {
	var policy *wallet.Policy
	if *f.policy != "" {
		p, err := wallet.LoadPolicy(*f.policy)
		if err != nil {
			return nil, err
		}
		policy = p
	}
	cfg.Policy, cfg.Assets = policy, evm.NewRegistry(f.assets()...)
	if needKey {
		key, err := f.loadKey(stderr)
		if err != nil {
			return nil, err
		}
		cfg.Key = key
	} else {
		addr, err := f.addressOnly()
		if err != nil {
			return nil, err
		}
		cfg.Address = addr
	}
	if *f.store == "" {
		return nil, errors.New("--store is required")
	}
	db, err := store.Open(ctx, *f.store)
	if err != nil {
		return nil, err
	}
	cfg.Ledger = db
	w, err := wallet.New(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	where := *f.store
	if strings.HasPrefix(where, "postgres://") || strings.HasPrefix(where, "postgresql://") {
		where = "PostgreSQL" // the URL may hold a password
	}
	return &openedWallet{Wallet: w, db: db, where: where}, nil
}

// errNoWallet reports a command given no way to name its wallet.
var errNoWallet = errors.New("name the wallet: --key-file F, --keystore F or --address 0x…")

func (f walletFlags) addressOnly() (common.Address, error) {
	switch {
	case *f.address != "":
		a, err := evm.ParseAddress(*f.address)
		if err != nil {
			return common.Address{}, fmt.Errorf("--address: %w", err)
		}
		return a, nil
	case *f.keystore != "":
		return wallet.KeystoreAddress(*f.keystore)
	case *f.keyFile != "":
		key, err := wallet.LoadKeyFile(*f.keyFile)
		if err != nil {
			return common.Address{}, err
		}
		return crypto.PubkeyToAddress(key.PublicKey), nil
	}
	return common.Address{}, errNoWallet
}

func (f walletFlags) loadKey(stderr io.Writer) (*ecdsa.PrivateKey, error) {
	switch {
	case *f.keyFile != "" && *f.keystore != "":
		return nil, errors.New("--key-file and --keystore: give one")
	case *f.keyFile != "":
		return wallet.LoadKeyFile(*f.keyFile)
	case *f.keystore != "":
		pass, err := passphrase(*f.passFile, os.Getenv, os.Stdin, stderr, false)
		if err != nil {
			return nil, err
		}
		defer clear(pass)
		return wallet.LoadKeystore(*f.keystore, pass)
	}
	return nil, errors.New("a key is required: --key-file F or --keystore F")
}

// errNoPassphrase reports a keystore with no way to get its passphrase.
var errNoPassphrase = errors.New("the keystore needs a passphrase: --passphrase-file F, $QUID_PASSPHRASE, or run in a terminal to be asked")

// passphrase gets a keystore's passphrase from a file (permission-checked), then the
// QUID_PASSPHRASE environment variable, then a prompt when stdin is a terminal. With confirm,
// the prompt asks twice (for a new keystore).
func passphrase(file string, getenv func(string) string, stdin *os.File, stderr io.Writer, confirm bool) ([]byte, error) {
	if file != "" {
		return wallet.ReadPassphraseFile(file)
	}
	if p := getenv("QUID_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	fd := int(stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errNoPassphrase
	}
	fmt.Fprint(stderr, "Keystore passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	if confirm {
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase: %w", err)
		}
		same := string(again) == string(p)
		clear(again)
		if !same {
			clear(p)
			return nil, errors.New("the passphrases differ")
		}
	}
	if len(p) == 0 {
		return nil, wallet.ErrEmptyPassphrase
	}
	return p, nil
}

func runPay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pay", stderr)
	max := fs.String("max", "", "most this request may cost, in the asset's units, e.g. 0.05 (required unless the policy sets max_payment)")
	method := fs.String("X", http.MethodGet, "HTTP method")
	data := fs.String("d", "", "request body")
	purpose := fs.String("purpose", "", "why the agent pays, journaled with the payment")
	task := fs.String("task", "", "the agent's task id, journaled with the payment")
	upstream := fs.String("upstream", "", "id of the request that caused this one, journaled")
	expect := fs.String("expect-price", "", "pay only if the 402 asks at most this amount (the advertised price)")
	approval := fs.String("approval", "", "retry a payment that waited for approval, with its id")
	again := fs.Bool("again", false, "pay even though this request was paid within the policy's duplicate window")
	pendingWait := fs.Duration("pending-wait", 20*time.Second, "how long to keep presenting a payment whose settlement the seller reports pending")
	wf := addWalletFlags(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: quid pay URL --max AMOUNT (--key-file F | --keystore F) [--policy F] [--store DSN]
                [--purpose TEXT] [--task ID] [--expect-price AMOUNT] [--approval ID] [--again]

Fetches URL and pays its 402 within the policy, journaling why. The body goes to stdout,
the payment to stderr. Exit codes: 0 served; 1 error; 2 usage; 3 approval pending (the
message says how to approve, then retry with --approval ID); 4 refused by the policy
(the message names the rule; nothing was paid); 5 the server did not serve (body on stdout).`)
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
	if url == "" || (*max == "" && *wf.policy == "") || (*wf.keyFile == "" && *wf.keystore == "") {
		fs.Usage()
		return errUsage
	}
	var attempted *wallet.Payment
	w, err := wf.open(ctx, true, stderr, wallet.Config{
		Max: *max, PendingWait: *pendingWait,
		OnPayment: func(p wallet.Payment) {
			attempted = &p
			if p.Settled {
				fmt.Fprintf(stderr, "paid %s to %s on %s, transaction %s\n", p.Asset.Format(p.Amount), p.PayTo.Hex(), p.Network, p.Transaction)
			} else {
				fmt.Fprintf(stderr, "payment of %s not settled: %s %s\n", p.Asset.Format(p.Amount), p.Reason, p.Transaction)
			}
		},
		OnAlert: func(a wallet.Alert) {
			fmt.Fprintf(stderr, "alert: %s (%s) at %s of %s\n", a.Rule, a.Scope, a.Asset.Format(a.Used), a.Asset.Format(a.Limit))
		},
	})
	if err != nil {
		return err
	}
	defer w.Close()

	var body io.Reader
	if *data != "" {
		body = strings.NewReader(*data)
	}
	ctx = wallet.WithIntent(ctx, wallet.Intent{Purpose: *purpose, TaskID: *task, UpstreamRequestID: *upstream,
		ExpectedPrice: *expect, ApprovalID: *approval, Again: *again})
	req, err := http.NewRequestWithContext(ctx, *method, url, body)
	if err != nil {
		return err
	}
	resp, err := w.Client().Do(req)
	if err != nil {
		return payError(err, w, wf, url, *max)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if attempted != nil {
			// The seller took (or may have taken) a payment and did not serve: retrying would
			// be refused as a duplicate, and --again could pay twice for one thing.
			return &exitError{exitNotServed, fmt.Errorf("%s after a payment of %s to %s (journaled); check before paying again with --again",
				resp.Status, attempted.Asset.Format(attempted.Amount), attempted.PayTo.Hex())}
		}
		return &exitError{exitNotServed, fmt.Errorf("%s", resp.Status)}
	}
	return nil
}

// payError turns a refusal into a message an agent (or its human) can act on, and its exit code.
func payError(err error, w *openedWallet, wf walletFlags, url, max string) error {
	var pending *wallet.ApprovalPendingError
	switch {
	case errors.As(err, &pending):
		storeFlag := storeHint(*wf.store)
		return &exitError{exitApprovalPending, fmt.Errorf("approval pending: %s (%s); nothing was paid.\n"+
			"  approve: quid wallet approve %s --address %s%s [--by NAME]\n"+
			"  deny:    quid wallet deny %s --address %s%s [--reason R]\n"+
			"  then retry: quid pay %s ... --approval %s",
			pending.ID, pending.Rule, pending.ID, w.Address().Hex(), storeFlag, pending.ID, w.Address().Hex(), storeFlag, url, pending.ID)}
	case errors.Is(err, wallet.ErrDuplicatePayment):
		return &exitError{exitRefused, fmt.Errorf("%w within the policy's duplicate_window; nothing was paid (pass --again to pay again on purpose)", wallet.ErrDuplicatePayment)}
	case errors.Is(err, wallet.ErrOverMax) && max != "":
		return &exitError{exitRefused, fmt.Errorf("%w (--max %s); nothing was paid", unwrapURL(err), max)}
	case isRefusal(err):
		return &exitError{exitRefused, fmt.Errorf("%w; nothing was paid", unwrapURL(err))}
	}
	return err
}

// storeHint is the --store flag to repeat in a suggested command: none for the default, and
// never a PostgreSQL URL, which may hold a password.
func storeHint(dsn string) string {
	switch {
	case dsn == defaultWalletStore():
		return ""
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return " --store postgres://…"
	}
	return " --store " + dsn
}

// isRefusal reports a payment the wallet refused by rule: nothing was paid.
func isRefusal(err error) bool {
	for _, e := range []error{wallet.ErrOverBudget, wallet.ErrOverMax, wallet.ErrApprovalDenied, wallet.ErrApprovalInvalid,
		wallet.ErrPayeeNotAllowed, wallet.ErrHostNotAllowed, wallet.ErrAssetNotAllowed, wallet.ErrNetworkNotAllowed,
		wallet.ErrOverExpectedPrice, wallet.ErrDelegationRevoked, wallet.ErrDelegationExpired, wallet.ErrOutOfScope,
		wallet.ErrNoPayableOption} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// unwrapURL drops the *url.Error wrapper ("Get "…": …"): the message names the URL elsewhere.
func unwrapURL(err error) error {
	var u *neturl.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}
