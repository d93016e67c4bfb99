package wallet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

var _ wallet.Ledger = (*store.DB)(nil)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestBudgetsCapsAndAlerts(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, _ string) {
		key, _ := crypto.GenerateKey()
		s := newShop(t, nil, cents(1))
		var alerts []wallet.Alert
		clk := &clock{now: time.Now()}
		w := policyWallet(t, key, l, "max_payment: \"0.05\"\nbudgets: {hour: \"0.03\", day: \"0.05\"}\n", func(c *wallet.Config) {
			c.Now = clk.Now
			c.OnAlert = func(a wallet.Alert) { alerts = append(alerts, a) }
		})
		ctx := context.Background()
		for i := range 3 {
			if status, _, err := get(ctx, w, fmt.Sprintf("%s/r%d", s.srv.URL, i)); err != nil || status != 200 {
				t.Fatalf("payment %d: %d %v", i, status, err)
			}
		}
		_, _, err := get(ctx, w, s.srv.URL+"/r3")
		var ob *wallet.OverBudgetError
		if !errors.As(err, &ob) || !errors.Is(err, wallet.ErrOverBudget) || ob.Rule != "budgets.hour" || ob.Used.String() != "30000" || ob.Limit.String() != "30000" {
			t.Fatalf("err %v; want the hour's budget, 0.03 used of 0.03", err)
		}
		if n := s.paid.Load(); n != 3 {
			t.Fatalf("%d payments; want 3", n)
		}
		// The hour budget crossed 80% on the third payment (0.03 >= 0.024), once.
		if len(alerts) != 1 || alerts[0].Rule != "budgets.hour" || alerts[0].Used.String() != "30000" {
			t.Fatalf("alerts %+v", alerts)
		}
		if a := journal(t, w, store.KindAlert); len(a) != 1 || a[0].Rule != "budgets.hour" {
			t.Fatalf("alert journal %+v", a)
		}
		// An hour later the hour budget is free again, the day's is not: 2 more, then the day.
		clk.Add(time.Hour + time.Minute)
		for i := range 2 {
			if status, _, err := get(ctx, w, fmt.Sprintf("%s/s%d", s.srv.URL, i)); err != nil || status != 200 {
				t.Fatalf("payment %d: %d %v", i, status, err)
			}
		}
		if _, _, err := get(ctx, w, s.srv.URL+"/s2"); !errors.As(err, &ob) || ob.Rule != "budgets.day" {
			t.Fatalf("err %v; want the day's budget", err)
		}
		status, err := w.BudgetStatus(ctx)
		if err != nil || len(status) != 2 || status[1].Rule != "budgets.day" || status[1].Used.String() != "50000" || !status[1].Remaining.IsZero() {
			t.Fatalf("budget status %+v %v", status, err)
		}
		recent, err := w.RecentPayments(ctx, 2)
		if err != nil || len(recent) != 2 || recent[1].Kind != store.KindPaid || recent[1].Tx == "" {
			t.Fatalf("recent %+v %v", recent, err)
		}
	})
}

func TestPerPayeeAndPerHostCaps(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	a := newShop(t, nil, cents(2))
	other := cents(2)
	other.PayTo = "0x0000000000000000000000000000000000000002"
	b := newShop(t, nil, other)
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\nper_payee: {limit: \"0.04\"}\nper_host: {limit: \"0.06\", window: hour}\n")
	ctx := context.Background()
	for i := range 2 {
		if _, _, err := get(ctx, w, fmt.Sprintf("%s/%d", a.srv.URL, i)); err != nil {
			t.Fatal(err)
		}
	}
	var ob *wallet.OverBudgetError
	if _, _, err := get(ctx, w, a.srv.URL+"/2"); !errors.As(err, &ob) || ob.Rule != "per_payee" {
		t.Fatalf("err %v; want per_payee", err)
	}
	// Another payee on the same host (127.0.0.1): the host's cap (0.06) stops the second.
	if _, _, err := get(ctx, w, b.srv.URL+"/0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(ctx, w, b.srv.URL+"/1"); !errors.As(err, &ob) || ob.Rule != "per_host" {
		t.Fatalf("err %v; want per_host", err)
	}
}

// TestConcurrentPaymentsNeverPassTheBudget: 100 goroutines pay on one budget; exactly
// floor(limit/price) payments are made, on every ledger.
func TestConcurrentPaymentsNeverPassTheBudget(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, _ string) {
		key, _ := crypto.GenerateKey()
		s := newShop(t, nil, cents(1))
		w := policyWallet(t, key, l, "max_payment: \"1\"\nbudgets: {day: \"0.25\"}\n")
		var paid, over atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status, _, err := get(context.Background(), w, fmt.Sprintf("%s/%d", s.srv.URL, i))
				switch {
				case err == nil && status == 200:
					paid.Add(1)
				case errors.Is(err, wallet.ErrOverBudget):
					over.Add(1)
				default:
					t.Errorf("%d %v", status, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if paid.Load() != 25 || over.Load() != 75 || s.paid.Load() != 25 {
			t.Fatalf("%d paid, %d over budget, %d payments received; want 25, 75, 25", paid.Load(), over.Load(), s.paid.Load())
		}
		if n, err := w.VerifyJournal(context.Background()); err != nil || n < 100 {
			t.Fatalf("journal of %d entries: %v", n, err)
		}
	})
}

const raceChildEnv = "QUID_WALLET_RACE_CHILD"

// raceChild is a second process paying on the budget a test shares with it through the store.
func raceChild() int {
	ctx := context.Background()
	db, err := store.Open(ctx, os.Getenv("QUID_RACE_DSN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	key, err := wallet.ParseKey(os.Getenv("QUID_RACE_KEY"))
	if err != nil {
		return 2
	}
	p, _ := wallet.ParsePolicy([]byte(os.Getenv("QUID_RACE_POLICY")))
	w, err := wallet.New(wallet.Config{Key: key, Assets: testRegistry(), Policy: p, Ledger: db})
	if err != nil {
		return 2
	}
	if os.Getenv("QUID_RACE_MODE") == "hang" {
		// Pay once to a seller that never answers; the test kills this process meanwhile.
		get(ctx, w, os.Getenv("QUID_RACE_URL")+"/hang")
		return 3
	}
	n, _ := strconv.Atoi(os.Getenv("QUID_RACE_N"))
	var paid, over atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, err := get(ctx, w, fmt.Sprintf("%s/%s-%d", os.Getenv("QUID_RACE_URL"), os.Getenv("QUID_RACE_NAME"), i))
			switch {
			case err == nil && status == 200:
				paid.Add(1)
			case errors.Is(err, wallet.ErrOverBudget):
				over.Add(1)
			default:
				fmt.Fprintln(os.Stderr, status, err)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("paid=%d over=%d\n", paid.Load(), over.Load())
	return 0
}

// TestTwoProcessesRaceOneBudget: two processes, each with 40 goroutines, pay on one budget in
// one store (a SQLite file, then PostgreSQL): together they make exactly floor(limit/price)
// payments, and the journal they both appended to is one unbroken chain.
func TestTwoProcessesRaceOneBudget(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, dsn string) {
		if dsn == "" {
			t.Skip("a memory ledger is one process's")
		}
		key, _ := crypto.GenerateKey()
		s := newShop(t, nil, cents(1))
		policy := "max_payment: \"1\"\nbudgets: {week: \"0.30\"}\n"
		var outs [2]bytes.Buffer
		var cmds [2]*exec.Cmd
		for i := range cmds {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), raceChildEnv+"=1", "QUID_RACE_DSN="+dsn, "QUID_RACE_URL="+s.srv.URL,
				"QUID_RACE_KEY="+hex.EncodeToString(crypto.FromECDSA(key)), "QUID_RACE_POLICY="+policy, "QUID_RACE_N=40",
				fmt.Sprintf("QUID_RACE_NAME=p%d", i))
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i] = cmd
		}
		total := 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child %d: %v: %s", i, err, outs[i].String())
			}
			var paid, over int
			if _, err := fmt.Sscanf(outs[i].String(), "paid=%d over=%d", &paid, &over); err != nil || paid+over != 40 {
				t.Fatalf("child %d said %q", i, outs[i].String())
			}
			total += paid
		}
		if total != 30 || s.paid.Load() != 30 {
			t.Fatalf("%d paid by the children, %d received; want 30", total, s.paid.Load())
		}
		w := policyWallet(t, key, l, policy)
		if n, err := w.VerifyJournal(context.Background()); err != nil || n < 80 {
			t.Fatalf("journal of %d entries: %v", n, err)
		}
	})
}

func TestApprovalPendingApproveRetryPaysOnce(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, _ string) {
		key, _ := crypto.GenerateKey()
		s := newShop(t, nil, cents(10))
		w := policyWallet(t, key, l, "max_payment: \"1\"\napprove_above: \"0.05\"\n")
		ctx := wallet.WithIntent(context.Background(), wallet.Intent{Purpose: "buy the report", TaskID: "task-7"})
		_, _, err := get(ctx, w, s.srv.URL+"/report")
		var pending *wallet.ApprovalPendingError
		if !errors.As(err, &pending) || !errors.Is(err, wallet.ErrApprovalPending) || pending.ID == "" || pending.Rule != "approve_above" {
			t.Fatalf("err %v; want ApprovalPendingError", err)
		}
		// Another process (another Wallet on the same ledger, without the key) sees and approves it.
		admin, err := wallet.New(wallet.Config{Address: w.Address(), Ledger: l})
		if err != nil {
			t.Fatal(err)
		}
		list, err := admin.PendingApprovals(context.Background())
		if err != nil || len(list) != 1 || list[0].ID != pending.ID || list[0].Amount.String() != "100000" || list[0].TaskID != "task-7" {
			t.Fatalf("pending %+v %v", list, err)
		}
		retry := wallet.WithIntent(context.Background(), wallet.Intent{Purpose: "buy the report", ApprovalID: pending.ID})
		// Before the decision the retry still waits.
		if _, _, err := get(retry, w, s.srv.URL+"/report"); !errors.Is(err, wallet.ErrApprovalPending) {
			t.Fatalf("retry before approval: %v", err)
		}
		if err := admin.Approve(context.Background(), pending.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := admin.Deny(context.Background(), pending.ID, "bob", "too late"); err == nil {
			t.Fatal("a decided approval was decided again")
		}
		// 20 concurrent retries with the approval: exactly one pays.
		var paid atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := wallet.WithIntent(context.Background(), wallet.Intent{ApprovalID: pending.ID, Again: true})
				status, _, err := get(ctx, w, fmt.Sprintf("%s/report?try=%d", s.srv.URL, i))
				if err == nil && status == 200 {
					paid.Add(1)
				} else if !errors.Is(err, wallet.ErrApprovalInvalid) {
					t.Errorf("retry %d: %d %v", i, status, err)
				}
			}()
		}
		wg.Wait()
		if paid.Load() != 1 || s.paid.Load() != 1 {
			t.Fatalf("%d retries paid, %d payments; want 1", paid.Load(), s.paid.Load())
		}
		approved := journal(t, w, store.KindApproved)
		if len(approved) != 1 || approved[0].Actor != "alice" || approved[0].Approval != pending.ID || approved[0].TaskID != "task-7" {
			t.Fatalf("approved entries %+v", approved)
		}
		if p := journal(t, w, store.KindPaid); len(p) != 1 || p[0].Approval != pending.ID {
			t.Fatalf("paid entries %+v", p)
		}

		// Denied: the retry is refused with ErrApprovalDenied.
		_, _, err = get(context.Background(), w, s.srv.URL+"/other")
		if !errors.As(err, &pending) {
			t.Fatalf("second pending: %v", err)
		}
		if err := admin.Deny(context.Background(), pending.ID, "bob", "not needed"); err != nil {
			t.Fatal(err)
		}
		denied := wallet.WithIntent(context.Background(), wallet.Intent{ApprovalID: pending.ID})
		if _, _, err := get(denied, w, s.srv.URL+"/other"); !errors.Is(err, wallet.ErrApprovalDenied) {
			t.Fatalf("after deny: %v", err)
		}
		if d := journal(t, w, store.KindDenied); len(d) != 1 || d[0].Actor != "bob" || d[0].Detail != "not needed" {
			t.Fatalf("denied entries %+v", d)
		}
		if err := admin.Approve(context.Background(), "apr_nope", "alice"); !errors.Is(err, wallet.ErrUnknownApproval) {
			t.Fatalf("unknown approval: %v", err)
		}
	})
}

func TestApprovalMustMatchThePayment(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(10))
	dearer := newShop(t, nil, cents(20))
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\napprove_above: \"0.05\"\n")
	var pending *wallet.ApprovalPendingError
	if _, _, err := get(context.Background(), w, s.srv.URL); !errors.As(err, &pending) {
		t.Fatal(err)
	}
	w.Approve(context.Background(), pending.ID, "alice")
	ctx := wallet.WithIntent(context.Background(), wallet.Intent{ApprovalID: pending.ID})
	if _, _, err := get(ctx, w, dearer.srv.URL); !errors.Is(err, wallet.ErrApprovalInvalid) {
		t.Fatalf("an approval of 0.10 used for 0.20: %v", err)
	}
	if dearer.paid.Load() != 0 {
		t.Fatal("paid with a mismatched approval")
	}
	// Still usable for what it approved.
	if status, _, err := get(ctx, w, s.srv.URL); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
}

func TestFirstPaymentToAPayeeWaitsForApproval(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(1))
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\napprove_new_payees: true\n")
	var pending *wallet.ApprovalPendingError
	if _, _, err := get(context.Background(), w, s.srv.URL+"/a"); !errors.As(err, &pending) || pending.Rule != "new_payee" {
		t.Fatalf("err %v; want a new-payee approval", err)
	}
	w.Approve(context.Background(), pending.ID, "alice")
	ctx := wallet.WithIntent(context.Background(), wallet.Intent{ApprovalID: pending.ID})
	if status, _, err := get(ctx, w, s.srv.URL+"/a"); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
	// The payee is known now.
	if status, _, err := get(context.Background(), w, s.srv.URL+"/b"); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
}

func TestDuplicateWindow(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(1))
	clk := &clock{now: time.Now()}
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\nduplicate_window: 5m\n", func(c *wallet.Config) { c.Now = clk.Now })
	ctx := context.Background()
	if _, _, err := get(ctx, w, s.srv.URL+"/q"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(ctx, w, s.srv.URL+"/q"); !errors.Is(err, wallet.ErrDuplicatePayment) {
		t.Fatalf("same request again: %v", err)
	}
	if s.paid.Load() != 1 {
		t.Fatal("paid twice")
	}
	if _, _, err := get(ctx, w, s.srv.URL+"/q?page=2"); err != nil {
		t.Fatalf("another URL: %v", err)
	}
	again := wallet.WithIntent(ctx, wallet.Intent{Again: true})
	if _, _, err := get(again, w, s.srv.URL+"/q"); err != nil {
		t.Fatalf("asked again: %v", err)
	}
	clk.Add(6 * time.Minute)
	if _, _, err := get(ctx, w, s.srv.URL+"/q"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if s.paid.Load() != 4 {
		t.Fatalf("%d payments; want 4", s.paid.Load())
	}
}

// TestFailureMidway: a payment the seller reports failed frees its budget and is journaled as
// failed; one whose outcome is unknown (the connection dropped after the seller got it) stays
// counted until its authorization can no longer be settled.
func TestFailureMidway(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, _ string) {
		key, _ := crypto.GenerateKey()
		failed := newShop(t, func(w http.ResponseWriter, _ int) {
			settleHeader(w, x402.SettleResponse{ErrorReason: x402.ReasonInsufficientFunds, Network: "eip155:31337"})
			w.WriteHeader(http.StatusPaymentRequired)
		}, cents(2))
		dropped := newShop(t, func(w http.ResponseWriter, _ int) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, cents(2))
		clk := &clock{now: time.Now()}
		w := policyWallet(t, key, l, "max_payment: \"1\"\nbudgets: {day: \"0.02\"}\n", func(c *wallet.Config) { c.Now = clk.Now })
		ctx := context.Background()
		status, _, err := get(ctx, w, failed.srv.URL)
		if err != nil || status != http.StatusPaymentRequired {
			t.Fatalf("%d %v", status, err)
		}
		if f := journal(t, w, store.KindFailed); len(f) != 1 || f[0].Rule != "seller_refused" || f[0].Spend == "" {
			t.Fatalf("failed entries %+v", f)
		}
		// The failed payment freed its budget: the dropped one is admitted.
		if _, _, err := get(ctx, w, dropped.srv.URL); err == nil {
			t.Fatal("a dropped connection reported no error")
		}
		if u := journal(t, w, store.KindUnknown); len(u) != 1 {
			t.Fatalf("unknown entries %+v", u)
		}
		// Its authorization may still be settled: the budget stays used.
		if _, _, err := get(ctx, w, failed.srv.URL+"/again"); !errors.Is(err, wallet.ErrOverBudget) {
			t.Fatalf("after an unknown outcome: %v", err)
		}
		// Once the authorization has expired (60 s asked, plus the wallet's skew), it counts no more.
		clk.Add(3 * time.Minute)
		if status, _, err := get(ctx, w, failed.srv.URL+"/later"); err != nil || status != http.StatusPaymentRequired {
			t.Fatalf("after expiry: %d %v", status, err)
		}
	})
}

func TestDelegation(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, _ string) {
		key, _ := crypto.GenerateKey()
		s := newShop(t, nil, cents(1))
		clk := &clock{now: time.Now()}
		parent := policyWallet(t, key, l, "max_payment: \"1\"\nbudgets: {day: \"0.10\"}\n", func(c *wallet.Config) { c.Now = clk.Now })
		ctx := context.Background()
		child, err := parent.Delegate(ctx, "0.03", time.Hour, wallet.Scope{Hosts: []string{"127.0.0.1"}, Routes: []string{"GET /tools"}})
		if err != nil {
			t.Fatal(err)
		}
		grandchild, err := child.Delegate(ctx, "0.05", time.Hour, wallet.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		// The grandchild's own limit is 0.05, but its parent's 0.03 binds it.
		var paid int
		var ob *wallet.OverBudgetError
		for i := range 5 {
			_, _, err := get(ctx, grandchild, fmt.Sprintf("%s/tools/%d", s.srv.URL, i))
			if err == nil {
				paid++
			} else if !errors.As(err, &ob) || ob.Rule != "delegation" || ob.Scope != store.ScopeDelegation(child.DelegationID()) {
				t.Fatalf("payment %d: %v", i, err)
			}
		}
		if paid != 3 {
			t.Fatalf("grandchild paid %d; want 3", paid)
		}
		if _, _, err := get(ctx, child, s.srv.URL+"/tools/x"); !errors.Is(err, wallet.ErrOverBudget) {
			t.Fatalf("child after the grandchild spent its budget: %v", err)
		}
		// Child spend counts against the parent: 0.03 of 0.10 used.
		b, err := parent.BudgetStatusFor(ctx, token)
		if err != nil || len(b) != 1 || b[0].Used.String() != "30000" {
			t.Fatalf("parent budget %+v %v", b, err)
		}
		// Scope: routes and payees.
		if _, _, err := get(ctx, child, s.srv.URL+"/other"); !errors.Is(err, wallet.ErrOutOfScope) {
			t.Fatalf("out of the route scope: %v", err)
		}
		narrow, err := parent.Delegate(ctx, "1", time.Hour, wallet.Scope{Payees: []string{"0x0000000000000000000000000000000000000009"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(ctx, narrow, s.srv.URL+"/n"); !errors.Is(err, wallet.ErrOutOfScope) {
			t.Fatalf("out of the payee scope: %v", err)
		}
		// Another process opens a delegation by id, and revokes it: the next payment stops.
		fresh, err := parent.Delegate(ctx, "0.05", time.Hour, wallet.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		other := policyWallet(t, key, l, "max_payment: \"1\"\nbudgets: {day: \"0.10\"}\n", func(c *wallet.Config) { c.Now = clk.Now })
		opened, err := other.OpenDelegation(ctx, fresh.DelegationID())
		if err != nil {
			t.Fatal(err)
		}
		sub, err := opened.Delegate(ctx, "0.05", time.Hour, wallet.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(ctx, opened, s.srv.URL+"/f1"); err != nil {
			t.Fatal(err)
		}
		if err := parent.Revoke(ctx, fresh.DelegationID()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := get(ctx, opened, s.srv.URL+"/f2"); !errors.Is(err, wallet.ErrDelegationRevoked) {
			t.Fatalf("after revoke: %v", err)
		}
		if _, _, err := get(ctx, sub, s.srv.URL+"/f3"); !errors.Is(err, wallet.ErrDelegationRevoked) {
			t.Fatalf("a revoked delegation's child: %v", err)
		}
		// Expiry by the clock.
		short, err := parent.Delegate(ctx, "0.05", time.Minute, wallet.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Minute)
		if _, _, err := get(ctx, short, s.srv.URL+"/e"); !errors.Is(err, wallet.ErrDelegationExpired) {
			t.Fatalf("after expiry: %v", err)
		}
		if j := journal(t, parent, store.KindDelegated, store.KindRevoked); len(j) != 7 {
			t.Fatalf("%d delegation entries; want 7", len(j))
		}
		if _, err := parent.OpenDelegation(ctx, "dlg_nope"); !errors.Is(err, wallet.ErrUnknownDelegation) {
			t.Fatalf("unknown delegation: %v", err)
		}
	})
}

// TestJournalRecordsContextAndNoSecrets: the journal holds the business context of a payment,
// the hash of the body delivered, never the key or the signature; exports carry every entry.
func TestJournalRecordsContextAndNoSecrets(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(1))
	w := policyWallet(t, key, wallet.NewMemoryLedger(), "max_payment: \"1\"\n")
	ctx := wallet.WithIntent(context.Background(), wallet.Intent{Purpose: "weather for the trip", TaskID: "t-1", UpstreamRequestID: "up-9"})
	_, body, err := get(ctx, w, s.srv.URL+"/forecast?apikey=secret123")
	if err != nil {
		t.Fatal(err)
	}
	paid := journal(t, w, store.KindPaid)
	if len(paid) != 1 {
		t.Fatalf("paid entries %+v", paid)
	}
	p := paid[0]
	if p.Purpose != "weather for the trip" || p.TaskID != "t-1" || p.UpstreamRequestID != "up-9" || p.Payee != payTo ||
		p.Host != "127.0.0.1" || p.Route != "GET "+s.srv.URL+"/forecast" || p.Rail != "x402" || p.Amount.String() != "10000" ||
		p.Asset != token.Address || p.Tx == "" || p.Spend == "" {
		t.Fatalf("paid entry %+v", p)
	}
	d := journal(t, w, store.KindDelivered)
	if len(d) != 1 || d[0].ResponseHash != sha256Hex(body) || d[0].Spend != p.Spend {
		t.Fatalf("delivered %+v; want the hash of %q", d, body)
	}
	var jsonl, csvOut bytes.Buffer
	if err := w.ExportJournal(context.Background(), &jsonl, wallet.FormatJSONL); err != nil {
		t.Fatal(err)
	}
	if err := w.ExportJournal(context.Background(), &csvOut, wallet.FormatCSV); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(jsonl.String()), "\n")
	var first map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || first["kind"] != "paid" || first["purpose"] != "weather for the trip" {
		t.Fatalf("jsonl %s", jsonl.String())
	}
	rows, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "seq" || rows[1][3] != "paid" {
		t.Fatalf("csv %v %v", rows, err)
	}
	_, _, sig := decodePayment(t, s.headers[0])
	for _, secret := range []string{hex.EncodeToString(crypto.FromECDSA(key)), strings.TrimPrefix(sig.String(), "0x"), "secret123"} {
		if strings.Contains(strings.ToLower(jsonl.String()), strings.ToLower(secret)) {
			t.Fatalf("the journal holds a secret (%.8s…)", secret)
		}
	}
	if err := w.ExportJournal(context.Background(), &jsonl, "xml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func testRegistry() *evm.Registry { return evm.NewRegistry(token, otherToken) }

// TestKilledBetweenReserveAndSettle: a process is killed after its payment reached the seller
// and before it learnt the outcome. The spend it reserved stays counted (the authorization may
// still be settled) until the authorization expires; nothing frees it early.
func TestKilledBetweenReserveAndSettle(t *testing.T) {
	t.Parallel()
	ledgers(t, func(t *testing.T, l wallet.Ledger, dsn string) {
		if dsn == "" {
			t.Skip("a memory ledger dies with its process")
		}
		key, _ := crypto.GenerateKey()
		received := make(chan struct{}, 1)
		release := make(chan struct{})
		s := newShop(t, func(w http.ResponseWriter, _ int) {
			received <- struct{}{}
			<-release
		}, cents(1))
		defer close(release)
		policy := "max_payment: \"1\"\nbudgets: {day: \"0.01\"}\n"
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), raceChildEnv+"=1", "QUID_RACE_MODE=hang", "QUID_RACE_DSN="+dsn, "QUID_RACE_URL="+s.srv.URL,
			"QUID_RACE_KEY="+hex.EncodeToString(crypto.FromECDSA(key)), "QUID_RACE_POLICY="+policy)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-received:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Fatal("the child's payment never reached the seller")
		}
		cmd.Process.Kill()
		cmd.Wait()

		clk := &clock{now: time.Now()}
		w := policyWallet(t, key, l, policy, func(c *wallet.Config) { c.Now = clk.Now })
		ctx := context.Background()
		b, err := w.BudgetStatusFor(ctx, token)
		if err != nil || len(b) != 1 || b[0].Used.String() != "10000" {
			t.Fatalf("budget after the kill %+v %v; want 0.01 still used", b, err)
		}
		if _, _, err := get(ctx, w, s.srv.URL+"/after"); !errors.Is(err, wallet.ErrOverBudget) {
			t.Fatalf("a payment past the reserved budget: %v", err)
		}
		if j := journal(t, w, store.KindPaid, store.KindFailed); len(j) != 0 {
			t.Fatalf("the killed payment was journaled as %+v", j)
		}
		// Past validBefore (60 s) and the wallet's skew, the authorization cannot be settled.
		clk.Add(3 * time.Minute)
		b, _ = w.BudgetStatusFor(ctx, token)
		if len(b) != 1 || !b[0].Used.IsZero() {
			t.Fatalf("budget after expiry %+v", b)
		}
	})
}

// brokenLedger is a MemoryLedger whose SettleSpend fails, as a database might mid-payment.
type brokenLedger struct{ *wallet.MemoryLedger }

func (brokenLedger) SettleSpend(context.Context, string, string, string, store.JournalEntry) (store.JournalEntry, error) {
	return store.JournalEntry{}, errors.New("disk full")
}

// TestLedgerFailureAfterPaying: the seller was paid but the ledger cannot record it. The
// request fails with the cause, and the spend stays reserved, so the budget still counts it.
func TestLedgerFailureAfterPaying(t *testing.T) {
	t.Parallel()
	key, _ := crypto.GenerateKey()
	s := newShop(t, nil, cents(1))
	w := policyWallet(t, key, brokenLedger{wallet.NewMemoryLedger()}, "max_payment: \"1\"\nbudgets: {day: \"0.01\"}\n")
	ctx := context.Background()
	if _, _, err := get(ctx, w, s.srv.URL); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err %v; want the ledger's failure", err)
	}
	b, err := w.BudgetStatusFor(ctx, token)
	if err != nil || len(b) != 1 || b[0].Used.String() != "10000" {
		t.Fatalf("budget %+v %v; want the unrecorded payment still counted", b, err)
	}
	if _, _, err := get(ctx, w, s.srv.URL+"/2"); !errors.Is(err, wallet.ErrOverBudget) {
		t.Fatalf("second payment: %v", err)
	}
	if s.paid.Load() != 1 {
		t.Fatalf("%d payments", s.paid.Load())
	}
}
