package wallet_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/wallet"
)

// TestVerifyJournalDetectsTampering edits the journal's rows directly in the database (SQLite
// and PostgreSQL): an edited field, a deleted entry, two entries swapped, an entry inserted and
// entries cut off the end are each found, at the entry where the chain breaks.
func TestVerifyJournalDetectsTampering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tamper  []string // statements; ? is the wallet id
		seq     uint64
		anchor  bool // needs the recorded head to be detected
		message string
	}{
		{"edited amount", []string{`UPDATE wallet_journal SET amount = '1' WHERE wallet = ? AND seq = 3`}, 3, false, "edited"},
		{"edited purpose", []string{`UPDATE wallet_journal SET purpose = 'innocent' WHERE wallet = ? AND seq = 2`}, 2, false, "edited"},
		{"deleted entry", []string{`DELETE FROM wallet_journal WHERE wallet = ? AND seq = 3`}, 4, false, "deleted"},
		{"deleted first", []string{`DELETE FROM wallet_journal WHERE wallet = ? AND seq = 1`}, 2, false, "deleted"},
		{"swapped", []string{
			`UPDATE wallet_journal SET seq = 100 WHERE wallet = ? AND seq = 2`,
			`UPDATE wallet_journal SET seq = 2 WHERE wallet = ? AND seq = 3`,
			`UPDATE wallet_journal SET seq = 3 WHERE wallet = ? AND seq = 100`}, 2, false, "follow"},
		{"renumbered after a deletion", []string{
			`DELETE FROM wallet_journal WHERE wallet = ? AND seq = 2`,
			`UPDATE wallet_journal SET seq = 2 WHERE wallet = ? AND seq = 3`,
			`UPDATE wallet_journal SET seq = 3 WHERE wallet = ? AND seq = 4`}, 2, false, "follow"},
		{"cut off the end", []string{`DELETE FROM wallet_journal WHERE wallet = ? AND seq >= 4`}, 6, true, "removed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ledgers(t, func(t *testing.T, l wallet.Ledger, dsn string) {
				if dsn == "" {
					t.Skip("rows are edited in the database")
				}
				key, _ := crypto.GenerateKey()
				s := newShop(t, nil, cents(1))
				w := policyWallet(t, key, l, "max_payment: \"1\"\n")
				ctx := wallet.WithIntent(context.Background(), wallet.Intent{Purpose: "audit me"})
				for i := range 3 {
					if _, _, err := get(ctx, w, fmt.Sprintf("%s/%d", s.srv.URL, i)); err != nil {
						t.Fatal(err)
					}
				}
				head, err := w.VerifyJournalFrom(context.Background(), wallet.JournalHead{})
				if err != nil || head.Seq != 6 { // paid and delivered for each
					t.Fatalf("untouched journal: head %d, %v", head.Seq, err)
				}
				db := rawDB(t, dsn)
				for _, stmt := range tc.tamper {
					if strings.HasPrefix(dsn, "postgres") {
						stmt = strings.Replace(stmt, "?", "$1", 1)
					}
					if _, err := db.Exec(stmt, w.ID()); err != nil {
						t.Fatal(err)
					}
				}
				var anchor wallet.JournalHead
				if tc.anchor {
					anchor = head
					if _, err := w.VerifyJournal(context.Background()); err != nil {
						t.Fatalf("without the head, a cut end cannot be seen; got %v", err)
					}
				}
				_, err = w.VerifyJournalFrom(context.Background(), anchor)
				var je *wallet.JournalError
				if !errors.As(err, &je) || !errors.Is(err, wallet.ErrJournalTampered) || je.Seq != tc.seq || !strings.Contains(je.Reason, tc.message) {
					t.Fatalf("err %v; want a break at %d (%s)", err, tc.seq, tc.message)
				}
			})
		})
	}
}

func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	driver, name := "sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)"
	if strings.HasPrefix(dsn, "postgres") {
		driver, name = "pgx", dsn
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRecordRefundIsJournaledAndFreesNothing(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(1))
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\nbudgets: {day: \"0.01\"}\n")
	ctx := context.Background()
	// "$0.01" is read in the dollar stablecoin's own decimals.
	if _, _, err := get(wallet.WithIntent(ctx, wallet.Intent{ExpectedPrice: "$0.01"}), w, s.srv.URL); err != nil {
		t.Fatal(err)
	}
	paid := journal(t, w, "paid")
	err := w.RecordRefund(ctx, wallet.Intent{TaskID: "t"}, wallet.Refund{Spend: paid[0].Spend, Payee: paid[0].Payee, Asset: token,
		Amount: paid[0].Amount, Tx: "0xfeed", Detail: "seller refunded"})
	if err != nil {
		t.Fatal(err)
	}
	r := journal(t, w, "refunded")
	if len(r) != 1 || r[0].Spend != paid[0].Spend || r[0].Amount.String() != "10000" || r[0].TaskID != "t" {
		t.Fatalf("refund entries %+v", r)
	}
	if _, _, err := get(ctx, w, s.srv.URL+"/2"); !errors.Is(err, wallet.ErrOverBudget) {
		t.Fatalf("a refund freed budget: %v", err)
	}
	if _, err := w.VerifyJournal(ctx); err != nil {
		t.Fatal(err)
	}
}
