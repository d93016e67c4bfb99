package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// devRPC is where quid dev serves its chain: the default for balances.
const devRPC = "http://127.0.0.1:8545"

func runWallet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "approve":
			return runDecide(ctx, true, args[1:], stdout, stderr)
		case "deny":
			return runDecide(ctx, false, args[1:], stdout, stderr)
		case "new":
			return runWalletNew(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newFlags("wallet", stderr)
	wf := addWalletFlags(fs, false)
	rpcURL := fs.String("rpc", devRPC, "EVM JSON-RPC endpoint to read on-chain balances from (\"\": none)")
	recent := fs.Int("recent", 10, "how many recent payments to show")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: quid wallet (--address A | --key-file F | --keystore F) [--store DSN] [--policy F] [--rpc URL]
       quid wallet approve ID [--by NAME] (--address A | ...) [--store DSN]
       quid wallet deny ID [--by NAME] [--reason R] (--address A | ...) [--store DSN]
       quid wallet new --keystore F [--passphrase-file F]

Shows balances, budgets used and remaining per window, pending approvals and recent
payments. A keystore's address is read without its passphrase.`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	w, err := wf.open(ctx, false, stderr, wallet.Config{})
	if err != nil {
		return err
	}
	defer w.Close()

	fmt.Fprintf(stdout, "wallet %s (store %s)\n", w.Address().Hex(), w.where)
	onChain := balances(ctx, stdout, *rpcURL, w, wf.assets())

	fmt.Fprintln(stdout, "\nbudgets")
	budgets, err := budgetsOf(ctx, w.Wallet, onChain)
	if err != nil {
		return err
	}
	if len(budgets) == 0 {
		if *wf.policy == "" {
			fmt.Fprintln(stdout, "  (no policy given: --policy F shows its budgets)")
		} else {
			fmt.Fprintln(stdout, "  (the policy sets no budgets)")
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tSCOPE\tWINDOW\tUSED\tLIMIT\tREMAINING")
		for _, b := range budgets {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", b.Rule, b.Scope, window(b.Window), b.Asset.Format(b.Used),
				b.Asset.Format(b.Limit), b.Asset.Format(b.Remaining))
		}
		tw.Flush()
	}

	fmt.Fprintln(stdout, "\npending approvals")
	pending, err := w.PendingApprovals(ctx)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		fmt.Fprintln(stdout, "  (none)")
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tRULE\tAMOUNT\tPAYEE\tREQUEST\tPURPOSE\tTASK\tEXPIRES")
		for _, a := range pending {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", a.ID, a.Rule, amountOf(wf, a.Network, a.Asset, a.Amount),
				a.Payee.Hex(), a.Method, a.URL, orDash(oneLine(a.Purpose)), orDash(a.TaskID), a.Expires.UTC().Format(time.DateTime))
		}
		tw.Flush()
		where := "--address " + w.Address().Hex() + storeHint(*wf.store)
		fmt.Fprintf(stdout, "  decide with: quid wallet approve ID %s [--by NAME]\n           or: quid wallet deny ID %s [--reason R]\n", where, where)
	}

	alerts, err := w.Journal(ctx, store.JournalQuery{Kinds: []string{store.KindAlert}, Last: 5})
	if err != nil {
		return err
	}
	if len(alerts) > 0 {
		fmt.Fprintln(stdout, "\nrecent alerts")
		for _, a := range alerts {
			fmt.Fprintf(stdout, "  %s  %s\n", a.Time.UTC().Format(time.DateTime), oneLine(a.Detail))
		}
	}

	fmt.Fprintln(stdout, "\nrecent payments")
	paid, err := w.RecentPayments(ctx, *recent)
	if err != nil {
		return err
	}
	if len(paid) == 0 {
		fmt.Fprintln(stdout, "  (none)")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tOUTCOME\tAMOUNT\tPAYEE\tREQUEST\tPURPOSE\tTASK\tTRANSACTION")
	for _, e := range paid {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.DateTime), e.Kind,
			amountOf(wf, e.Network, e.Asset, e.Amount), e.Payee.Hex(), orDash(e.Route), orDash(oneLine(e.Purpose)),
			orDash(e.TaskID), orDash(e.Tx))
	}
	return tw.Flush()
}

// balances prints the wallet's on-chain balance of every trusted asset of the chain at rpcURL,
// and returns those assets. A chain that cannot be reached is reported, not fatal: budgets and
// approvals are still worth showing.
func balances(ctx context.Context, stdout io.Writer, rpcURL string, w *openedWallet, assets []evm.Asset) []evm.Asset {
	if rpcURL == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(ctx, rpcURL)
	if err != nil {
		fmt.Fprintf(stdout, "balances: %s unreachable\n", rpcURL)
		return nil
	}
	defer client.Close()
	id, err := client.ChainID(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "balances: %s unreachable\n", rpcURL)
		return nil
	}
	var onChain []evm.Asset
	for _, a := range assets {
		if !id.IsUint64() || a.ChainID != id.Uint64() {
			continue
		}
		onChain = append(onChain, a)
		ret, err := client.CallContract(ctx, ethereum.CallMsg{To: &a.Address, Data: evm.BalanceOfCalldata(w.Address())}, nil)
		v, derr := evm.DecodeUint256(ret)
		if err != nil || derr != nil {
			fmt.Fprintf(stdout, "balance: %s on eip155:%d unreadable\n", a.Symbol, a.ChainID)
			continue
		}
		fmt.Fprintf(stdout, "balance: %s on eip155:%d\n", a.Format(v), a.ChainID)
	}
	if len(onChain) == 0 {
		fmt.Fprintf(stdout, "balances: no trusted asset on chain %s at %s\n", id, rpcURL)
	}
	return onChain
}

// budgetsOf returns the budgets of the assets the wallet spent in this week, and of the assets
// of the chain whose balances were shown, so a fresh wallet shows its limits too.
func budgetsOf(ctx context.Context, w *wallet.Wallet, assets []evm.Asset) ([]wallet.Budget, error) {
	out, err := w.BudgetStatus(ctx)
	if err != nil {
		return nil, err
	}
	type key struct {
		rule, scope string
		asset       evm.Asset
	}
	seen := map[key]bool{}
	for _, b := range out {
		seen[key{b.Rule, b.Scope, b.Asset}] = true
	}
	for _, a := range assets {
		more, err := w.BudgetStatusFor(ctx, a)
		if err != nil {
			return nil, err
		}
		for _, b := range more {
			if !seen[key{b.Rule, b.Scope, b.Asset}] {
				seen[key{b.Rule, b.Scope, b.Asset}] = true
				out = append(out, b)
			}
		}
	}
	return out, nil
}

func window(d time.Duration) string {
	switch d {
	case 0:
		return "total"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	case 7 * 24 * time.Hour:
		return "week"
	}
	return d.String()
}

// amountOf formats an amount of a trusted asset in its units, or in atomic units of an address.
func amountOf(wf walletFlags, network string, asset common.Address, v evm.Amount) string {
	for _, a := range wf.assets() {
		if a.Address == asset && network == string(x402.EIP155(a.ChainID)) {
			return a.Format(v)
		}
	}
	if v.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s units of %x", v, asset)
}

// oneLine keeps a caller's free text on one line of a table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func runDecide(ctx context.Context, approve bool, args []string, stdout, stderr io.Writer) error {
	name := "wallet deny"
	if approve {
		name = "wallet approve"
	}
	fs := newFlags(name, stderr)
	wf := addWalletFlags(fs, false)
	by := fs.String("by", defaultActor(), "who decides, journaled with the decision")
	reason := fs.String("reason", "", "why (journaled)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: quid %s ID [--by NAME] [--reason R] (--address A | --key-file F | --keystore F) [--store DSN]\n", name)
		fs.PrintDefaults()
	}
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" || *by == "" {
		fs.Usage()
		return errUsage
	}
	w, err := wf.open(ctx, false, stderr, wallet.Config{})
	if err != nil {
		return err
	}
	defer w.Close()
	a, err := w.Approval(ctx, id)
	if err != nil {
		return err
	}
	if approve {
		err = w.Approve(ctx, id, *by)
	} else {
		err = w.Deny(ctx, id, *by, *reason)
	}
	if err != nil {
		return err
	}
	amount := amountOf(wf, a.Network, a.Asset, a.Amount)
	if approve {
		fmt.Fprintf(stdout, "approved %s: %s to %s for %s %s (by %s); the agent may now retry with --approval %s\n",
			id, amount, a.Payee.Hex(), a.Method, a.URL, *by, id)
	} else {
		fmt.Fprintf(stdout, "denied %s: %s to %s for %s %s (by %s)\n", id, amount, a.Payee.Hex(), a.Method, a.URL, *by)
	}
	return nil
}

// defaultActor is the login of whoever runs the command.
func defaultActor() string {
	for _, v := range []string{"QUID_ACTOR", "USER", "LOGNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return ""
}

func runWalletNew(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wallet new", stderr)
	path := fs.String("keystore", "", "the keystore file to create, mode 0600 (required)")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase, mode 0600 (else $QUID_PASSPHRASE, else a prompt)")
	light := fs.Bool("light-scrypt", false, "derive the key with 4 MB of memory instead of 256 MB, for small machines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid wallet new --keystore F [--passphrase-file F] [--light-scrypt]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	pass, err := passphrase(*passFile, os.Getenv, os.Stdin, stderr, true)
	if err != nil {
		return err
	}
	defer clear(pass)
	key, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	params := wallet.StandardScrypt
	if *light {
		params = wallet.LightScrypt
	}
	if err := wallet.WriteKeystore(*path, key, pass, params); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new wallet %s in %s\nfund it, then: quid pay URL --keystore %s --policy policy.yaml --purpose \"...\"\n",
		crypto.PubkeyToAddress(key.PublicKey).Hex(), *path, *path)
	return nil
}
