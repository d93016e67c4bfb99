package wallet

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
)

// ErrJournalTampered reports a journal whose chain is broken: an entry edited, deleted or moved.
var ErrJournalTampered = errors.New("wallet: journal chain broken")

// JournalError locates the first break in a journal's chain.
type JournalError struct {
	Seq    uint64 // the entry at which the chain breaks
	Reason string
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("wallet: journal chain broken at entry %d: %s", e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrJournalTampered) true.
func (e *JournalError) Is(target error) bool { return target == ErrJournalTampered }

// VerifyEntries checks a journal read in full from its first entry: sequence numbers from 1
// without gaps, each entry's Prev equal to the hash before it, each Hash equal to what the
// entry's fields hash to. It returns a *JournalError at the first break.
func VerifyEntries(entries []store.JournalEntry) error { return verifyChain(JournalHead{}, entries) }

// verifyChain checks entries that follow start (the zero head: the journal's beginning).
func verifyChain(start JournalHead, entries []store.JournalEntry) error {
	prev := start.Hash
	for i, e := range entries {
		want := start.Seq + uint64(i) + 1
		switch {
		case e.Seq != want:
			return &JournalError{Seq: e.Seq, Reason: fmt.Sprintf("sequence %d where %d was due (an entry deleted or moved)", e.Seq, want)}
		case e.Prev != prev:
			return &JournalError{Seq: e.Seq, Reason: "does not follow the entry before it (deleted, inserted or reordered)"}
		case e.ComputeHash() != e.Hash:
			return &JournalError{Seq: e.Seq, Reason: "content does not match its hash (edited)"}
		}
		prev = e.Hash
	}
	return nil
}

// readJournal reads the wallet's whole journal, or, from a MemoryLedger, the part it kept with
// the head of the entry before it.
func (w *Wallet) readJournal(ctx context.Context) (JournalHead, []store.JournalEntry, error) {
	if m, ok := w.cfg.Ledger.(*MemoryLedger); ok {
		start, entries := m.readJournalWindow(w.id)
		return start, entries, nil
	}
	entries, err := w.cfg.Ledger.ReadJournal(ctx, w.id, store.JournalQuery{})
	return JournalHead{}, entries, err
}

// VerifyJournal reads the wallet's whole journal from its ledger and verifies its chain. It
// returns the number of entries checked.
func (w *Wallet) VerifyJournal(ctx context.Context) (int, error) {
	start, entries, err := w.readJournal(ctx)
	if err != nil {
		return 0, err
	}
	return len(entries), verifyChain(start, entries)
}

// JournalHead is the last entry of a journal: kept somewhere else (printed, sent to the owner),
// it lets a later check detect that entries were cut off the end, which a chain alone cannot.
type JournalHead struct {
	Seq  uint64
	Hash [32]byte
}

// VerifyJournalFrom verifies the chain like VerifyJournal and also that it still holds anchor
// (a head recorded earlier; the zero head checks nothing more). It returns the current head.
func (w *Wallet) VerifyJournalFrom(ctx context.Context, anchor JournalHead) (JournalHead, error) {
	start, entries, err := w.readJournal(ctx)
	if err != nil {
		return JournalHead{}, err
	}
	if err := verifyChain(start, entries); err != nil {
		return JournalHead{}, err
	}
	head := start
	if n := len(entries); n > 0 {
		head = JournalHead{Seq: entries[n-1].Seq, Hash: entries[n-1].Hash}
	}
	switch {
	case anchor.Seq == 0:
	case anchor.Seq > head.Seq:
		return head, &JournalError{Seq: anchor.Seq, Reason: fmt.Sprintf("the journal ends at %d: entries were removed from its end", head.Seq)}
	case anchor.Seq == start.Seq:
		if start.Hash != anchor.Hash {
			return head, &JournalError{Seq: anchor.Seq, Reason: "does not match the recorded head"}
		}
	case anchor.Seq > start.Seq:
		if entries[anchor.Seq-start.Seq-1].Hash != anchor.Hash {
			return head, &JournalError{Seq: anchor.Seq, Reason: "does not match the recorded head"}
		}
	}
	// An anchor older than what a MemoryLedger kept cannot be checked; the chain from the
	// first entry kept was.
	return head, nil
}

// Journal returns the wallet's journal entries matching q, oldest first.
func (w *Wallet) Journal(ctx context.Context, q store.JournalQuery) ([]store.JournalEntry, error) {
	return w.cfg.Ledger.ReadJournal(ctx, w.id, q)
}

// RecentPayments returns the last n journal entries about payments made (paid, failed, unknown,
// refunded), oldest first.
func (w *Wallet) RecentPayments(ctx context.Context, n int) ([]store.JournalEntry, error) {
	return w.cfg.Ledger.ReadJournal(ctx, w.id, store.JournalQuery{
		Kinds: []string{store.KindPaid, store.KindFailed, store.KindUnknown, store.KindRefunded}, Last: n})
}

// Refund records money a seller gave back for a payment.
type Refund struct {
	Spend  string // the spend refunded, as journaled with the payment
	Payee  common.Address
	Asset  evm.Asset
	Amount evm.Amount
	Tx     string
	Detail string
}

// RecordRefund journals a refund. It changes no budget: what was spent stays counted for its
// window, so a seller's refunds cannot be used to spend past a limit.
func (w *Wallet) RecordRefund(ctx context.Context, in Intent, r Refund) error {
	e := store.JournalEntry{Wallet: w.id, Time: w.cfg.Now(), Kind: store.KindRefunded, Detail: r.Detail,
		Purpose: in.Purpose, TaskID: in.TaskID, UpstreamRequestID: in.UpstreamRequestID, Delegation: w.delegationID(),
		Spend: r.Spend, Payee: r.Payee, Rail: Rail, Network: networkOf(r.Asset), Asset: r.Asset.Address, Amount: r.Amount, Tx: r.Tx}
	_, err := w.cfg.Ledger.AppendJournal(ctx, e)
	return err
}

// Journal export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// ExportJournal writes the wallet's whole journal as JSON lines or CSV (with a header row).
func (w *Wallet) ExportJournal(ctx context.Context, out io.Writer, format string) error {
	entries, err := w.cfg.Ledger.ReadJournal(ctx, w.id, store.JournalQuery{})
	if err != nil {
		return err
	}
	return WriteJournal(out, entries, format)
}

// journalRecord is an entry as exported: every field, the hashes in hex.
type journalRecord struct {
	Seq               uint64 `json:"seq"`
	Time              string `json:"time"`
	Wallet            string `json:"wallet"`
	Kind              string `json:"kind"`
	Rule              string `json:"rule,omitempty"`
	Detail            string `json:"detail,omitempty"`
	Purpose           string `json:"purpose,omitempty"`
	TaskID            string `json:"task_id,omitempty"`
	UpstreamRequestID string `json:"upstream_request_id,omitempty"`
	Delegation        string `json:"delegation,omitempty"`
	Approval          string `json:"approval,omitempty"`
	Spend             string `json:"spend,omitempty"`
	Actor             string `json:"actor,omitempty"`
	Payee             string `json:"payee,omitempty"`
	Host              string `json:"host,omitempty"`
	Route             string `json:"route,omitempty"`
	Rail              string `json:"rail,omitempty"`
	Network           string `json:"network,omitempty"`
	Asset             string `json:"asset,omitempty"`
	Amount            string `json:"amount,omitempty"`
	Tx                string `json:"tx,omitempty"`
	ResponseHash      string `json:"response_hash,omitempty"`
	Prev              string `json:"prev"`
	Hash              string `json:"hash"`
}

var journalColumns = []string{"seq", "time", "wallet", "kind", "rule", "detail", "purpose", "task_id",
	"upstream_request_id", "delegation", "approval", "spend", "actor", "payee", "host", "route", "rail",
	"network", "asset", "amount", "tx", "response_hash", "prev", "hash"}

func recordOf(e store.JournalEntry) journalRecord {
	r := journalRecord{Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Wallet: e.Wallet, Kind: e.Kind,
		Rule: e.Rule, Detail: e.Detail, Purpose: e.Purpose, TaskID: e.TaskID, UpstreamRequestID: e.UpstreamRequestID,
		Delegation: e.Delegation, Approval: e.Approval, Spend: e.Spend, Actor: e.Actor, Host: e.Host, Route: e.Route,
		Rail: e.Rail, Network: e.Network, Tx: e.Tx, ResponseHash: e.ResponseHash,
		Prev: hex.EncodeToString(e.Prev[:]), Hash: hex.EncodeToString(e.Hash[:])}
	if e.Payee != (zeroAddress) {
		r.Payee = e.Payee.Hex()
	}
	if e.Asset != (zeroAddress) {
		r.Asset = e.Asset.Hex()
	}
	if !e.Amount.IsZero() {
		r.Amount = e.Amount.String()
	}
	return r
}

// WriteJournal writes entries as JSON lines (FormatJSONL) or CSV with a header row (FormatCSV).
// Amounts are in atomic units.
func WriteJournal(out io.Writer, entries []store.JournalEntry, format string) error {
	switch format {
	case FormatJSONL:
		enc := json.NewEncoder(out)
		for _, e := range entries {
			if err := enc.Encode(recordOf(e)); err != nil {
				return err
			}
		}
		return nil
	case FormatCSV:
		cw := csv.NewWriter(out)
		cw.Write(journalColumns)
		for _, e := range entries {
			r := recordOf(e)
			cw.Write([]string{strconv.FormatUint(r.Seq, 10), r.Time, r.Wallet, r.Kind, r.Rule, r.Detail, r.Purpose,
				r.TaskID, r.UpstreamRequestID, r.Delegation, r.Approval, r.Spend, r.Actor, r.Payee, r.Host, r.Route,
				r.Rail, r.Network, r.Asset, r.Amount, r.Tx, r.ResponseHash, r.Prev, r.Hash})
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("wallet: unknown journal format %q (jsonl or csv)", format)
}
