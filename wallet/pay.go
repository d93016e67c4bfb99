package wallet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// request is what the wallet knows of one paying request.
type request struct {
	http   *http.Request
	intent Intent
	host   string // normalised
	route  string // "METHOD scheme://host/path", without the query (it may carry secrets)
}

// entry returns a journal entry carrying the request's business context.
func (w *Wallet) entry(r *request, kind string) store.JournalEntry {
	return store.JournalEntry{Wallet: w.id, Time: w.cfg.Now(), Kind: kind, Purpose: r.intent.Purpose, TaskID: r.intent.TaskID,
		UpstreamRequestID: r.intent.UpstreamRequestID, Delegation: w.delegationID(), Host: r.host, Route: r.route, Rail: Rail}
}

func withChoice(e store.JournalEntry, c *choice) store.JournalEntry {
	e.Payee, e.Network, e.Asset, e.Amount = c.payTo, string(c.req.Network), c.asset.Address, c.amount
	return e
}

func routeOf(u *url.URL, method string) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return method + " " + v.String()
}

// refuse journals a refusal with the rule that made it, and returns err.
func (w *Wallet) refuse(ctx context.Context, r *request, c *choice, err error) error {
	e := w.entry(r, store.KindRefused)
	if c != nil {
		e = withChoice(e, c)
	}
	e.Rule, e.Detail = ruleOf(err), err.Error()
	if _, jerr := w.cfg.Ledger.AppendJournal(context.WithoutCancel(ctx), e); jerr != nil {
		return errors.Join(err, fmt.Errorf("wallet: journaling the refusal: %w", jerr))
	}
	return err
}

func ruleOf(err error) string {
	var pe *PolicyError
	var ob *OverBudgetError
	var ap *ApprovalPendingError
	switch {
	case errors.As(err, &pe):
		return pe.Rule
	case errors.As(err, &ob):
		return ob.Rule
	case errors.As(err, &ap):
		return ap.Rule
	case errors.Is(err, ErrOverMax):
		return "max"
	case errors.Is(err, ErrNoPayableOption):
		return "no_payable_option"
	}
	return ""
}

// pay decides on a 402 and, if the policy allows, pays it: choose an option, wait for approval
// if needed, reserve the spend against every limit, sign, present, and settle or release.
func (w *Wallet) pay(r *request, body []byte, o *offer) (*http.Response, error) {
	ctx := r.http.Context()
	if w.cfg.Key == nil {
		return nil, ErrNoKey
	}
	c, err := w.choose(r, o)
	if err != nil {
		return nil, w.refuse(ctx, r, c, err)
	}
	approvalID, err := w.approval(ctx, r, c)
	if err != nil {
		return nil, err
	}
	spend, err := w.reserve(ctx, r, c, approvalID)
	if err != nil {
		return nil, err
	}
	header, value, err := w.sign(o, c, spend.validBefore)
	if err != nil {
		w.release(ctx, r, c, spend, "signing failed")
		return nil, err
	}
	resp, err := w.present(r.http, body, header, value)
	if err != nil {
		// The seller may have settled before the connection broke: the spend stays counted
		// until the authorization expires.
		e := withChoice(w.entry(r, store.KindUnknown), c)
		e.Spend, e.Approval, e.Detail = spend.id, approvalID, "no answer to the paid request: "+err.Error()
		w.cfg.Ledger.AppendJournal(context.WithoutCancel(ctx), e)
		return nil, err
	}
	w.record(r.http, c, resp)
	return w.outcome(ctx, r, c, spend, approvalID, resp)
}

// outcome records what the seller answered to the paid request. If the ledger cannot record
// it, the response is closed and the error returned (a RoundTripper returns one or the other):
// the spend stays reserved, so budgets still count it, and the agent learns of the failure.
func (w *Wallet) outcome(ctx context.Context, r *request, c *choice, spend *spend, approvalID string, resp *http.Response) (*http.Response, error) {
	ctx = context.WithoutCancel(ctx)
	s, hasSettlement := Settlement(resp)
	e := withChoice(w.entry(r, ""), c)
	e.Spend, e.Approval = spend.id, approvalID
	switch {
	case (hasSettlement && s.Success) || (!hasSettlement && resp.StatusCode < 400):
		e.Kind = store.KindPaid
		if hasSettlement {
			e.Tx = s.Transaction
		}
		if _, err := w.cfg.Ledger.SettleSpend(ctx, w.id, spend.id, e.Tx, e); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("wallet: paid (spend %s), but recording it failed: %w", spend.id, err)
		}
		resp.Body = w.hashBody(r, c, spend.id, resp.Body)
	case hasSettlement && !s.Success && s.ErrorReason != x402.ReasonSettlementPending && resp.StatusCode >= 400:
		// The seller reports, in its settlement answer, that the payment failed. A bare 402
		// says nothing of the kind: the seller may have taken the payment and asked again.
		e.Kind, e.Rule = store.KindFailed, "seller_refused"
		e.Detail = fmt.Sprintf("status %d, %s", resp.StatusCode, s.ErrorReason)
		if _, err := w.cfg.Ledger.ReleaseSpend(ctx, w.id, spend.id, e); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("wallet: recording a failed payment: %w", err)
		}
	default:
		// Settlement still pending, or a seller error: the money may move; keep it counted.
		e.Kind, e.Detail = store.KindUnknown, fmt.Sprintf("status %d", resp.StatusCode)
		if hasSettlement {
			e.Tx, e.Detail = s.Transaction, e.Detail+", "+string(s.ErrorReason)
		}
		if _, err := w.cfg.Ledger.AppendJournal(ctx, e); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("wallet: journaling a payment of unknown outcome: %w", err)
		}
	}
	return resp, nil
}

func (w *Wallet) release(ctx context.Context, r *request, c *choice, spend *spend, why string) {
	e := withChoice(w.entry(r, store.KindFailed), c)
	e.Spend, e.Detail = spend.id, why
	w.cfg.Ledger.ReleaseSpend(context.WithoutCancel(ctx), w.id, spend.id, e)
}

// choice is an option the wallet decided to pay.
type choice struct {
	index  int
	req    x402.PaymentRequirements
	asset  evm.Asset
	amount evm.Amount
	payTo  common.Address
}

// choose picks, among the options the policy allows, the one earliest in the policy's Prefer
// list, then the cheapest; never the order the server listed them in. When none is allowed it
// returns the refusal of the cheapest payable option.
func (w *Wallet) choose(r *request, o *offer) (*choice, error) {
	if err := w.hostAllowed(r); err != nil {
		return nil, err
	}
	var allowed []*choice
	var refusedChoice *choice
	var refusal error
	for i, req := range o.required.Accepts {
		c, ok := w.payable(req)
		if !ok {
			continue
		}
		c.index = i
		if err := w.allowed(r, c); err != nil {
			if refusedChoice == nil || cheaper(c, refusedChoice) {
				refusedChoice, refusal = c, err
			}
			continue
		}
		allowed = append(allowed, c)
	}
	if len(allowed) == 0 {
		if refusal != nil {
			return refusedChoice, refusal
		}
		return nil, ErrNoPayableOption
	}
	sort.SliceStable(allowed, func(i, j int) bool {
		pi, pj := w.preference(allowed[i]), w.preference(allowed[j])
		if pi != pj {
			return pi < pj
		}
		return cheaper(allowed[i], allowed[j])
	})
	return allowed[0], nil
}

// cheaper compares the options' prices in whole units of their assets, exactly.
func cheaper(a, b *choice) bool {
	x := new(big.Int).Mul(a.amount.Big(), pow10(b.asset.Decimals))
	y := new(big.Int).Mul(b.amount.Big(), pow10(a.asset.Decimals))
	return x.Cmp(y) < 0
}

func pow10(n uint8) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

func (w *Wallet) preference(c *choice) int {
	for i, p := range w.cfg.Policy.Prefer {
		if p == string(c.req.Network) || assetIn(c.asset, []string{p}) {
			return i
		}
	}
	return len(w.cfg.Policy.Prefer)
}

func (w *Wallet) hostAllowed(r *request) error {
	p := w.cfg.Policy
	if hostMatches(r.host, p.Block.Hosts) {
		return &PolicyError{Rule: "block.hosts", Detail: r.host, Err: ErrHostNotAllowed}
	}
	if len(p.Allow.Hosts) > 0 && !hostMatches(r.host, p.Allow.Hosts) {
		return &PolicyError{Rule: "allow.hosts", Detail: r.host, Err: ErrHostNotAllowed}
	}
	for _, d := range w.chain {
		if len(d.Hosts) > 0 && !hostMatches(r.host, d.Hosts) {
			return &PolicyError{Rule: "delegation.hosts", Detail: fmt.Sprintf("%s not in delegation %s", r.host, d.ID), Err: ErrOutOfScope}
		}
		if len(d.Routes) > 0 && !routeMatches(r.http.Method, r.http.URL.Path, d.Routes) {
			return &PolicyError{Rule: "delegation.routes", Detail: fmt.Sprintf("%s %s not in delegation %s", r.http.Method, r.http.URL.Path, d.ID), Err: ErrOutOfScope}
		}
	}
	return nil
}

// allowed applies the lists, the delegation's payees, the caller's expected price and the
// per-payment maximums to one option.
func (w *Wallet) allowed(r *request, c *choice) error {
	p := w.cfg.Policy
	network := string(c.req.Network)
	switch {
	case stringIn(network, p.Block.Networks):
		return &PolicyError{Rule: "block.networks", Detail: network, Err: ErrNetworkNotAllowed}
	case len(p.Allow.Networks) > 0 && !stringIn(network, p.Allow.Networks):
		return &PolicyError{Rule: "allow.networks", Detail: network, Err: ErrNetworkNotAllowed}
	case assetIn(c.asset, p.Block.Assets):
		return &PolicyError{Rule: "block.assets", Detail: c.asset.Symbol, Err: ErrAssetNotAllowed}
	case len(p.Allow.Assets) > 0 && !assetIn(c.asset, p.Allow.Assets):
		return &PolicyError{Rule: "allow.assets", Detail: c.asset.Symbol, Err: ErrAssetNotAllowed}
	case addressIn(c.payTo, p.Block.Payees):
		return &PolicyError{Rule: "block.payees", Detail: c.payTo.Hex(), Err: ErrPayeeNotAllowed}
	case len(p.Allow.Payees) > 0 && !addressIn(c.payTo, p.Allow.Payees):
		return &PolicyError{Rule: "allow.payees", Detail: c.payTo.Hex(), Err: ErrPayeeNotAllowed}
	}
	for _, d := range w.chain {
		if len(d.Payees) > 0 && !addressIn(c.payTo, d.Payees) {
			return &PolicyError{Rule: "delegation.payees", Detail: fmt.Sprintf("%s not in delegation %s", c.payTo.Hex(), d.ID), Err: ErrOutOfScope}
		}
	}
	if ep := r.intent.ExpectedPrice; ep != "" {
		ep = strings.TrimSpace(ep)
		if rest, ok := strings.CutPrefix(ep, "$"); ok && c.asset.USD {
			ep = rest
		}
		max, err := evm.ParseDecimal(ep, c.asset.Decimals)
		if err != nil {
			return &PolicyError{Rule: "expected_price", Detail: fmt.Sprintf("%q is not an amount of %s", ep, c.asset.Symbol), Err: ErrOverExpectedPrice}
		}
		if c.amount.Cmp(max) > 0 {
			return &PolicyError{Rule: "expected_price", Detail: fmt.Sprintf("asked %s, expected at most %s", c.asset.Format(c.amount), c.asset.Format(max)), Err: ErrOverExpectedPrice}
		}
	}
	if w.cfg.Max != "" {
		max, err := evm.ParseDecimal(w.cfg.Max, c.asset.Decimals)
		if err != nil {
			return fmt.Errorf("%w: Max %q has more decimals than %s's %d", ErrOverMax, w.cfg.Max, c.asset.Symbol, c.asset.Decimals)
		}
		if c.amount.Cmp(max) > 0 {
			return fmt.Errorf("%w: asked %s, limit %s", ErrOverMax, c.asset.Format(c.amount), w.cfg.Max)
		}
	}
	if p.MaxPayment != "" {
		max, err := evm.ParseDecimal(p.MaxPayment, c.asset.Decimals)
		if err != nil {
			return &PolicyError{Rule: "max_payment", Detail: fmt.Sprintf("%q has more decimals than %s's %d", p.MaxPayment, c.asset.Symbol, c.asset.Decimals), Err: ErrOverBudget}
		}
		if c.amount.Cmp(max) > 0 {
			return &OverBudgetError{Rule: "max_payment", Asset: c.asset, Limit: max, Amount: c.amount}
		}
	}
	return nil
}

// approval returns the approval id the payment may consume, or creates a pending approval
// and returns *ApprovalPendingError when the payment needs a human and the caller has none.
func (w *Wallet) approval(ctx context.Context, r *request, c *choice) (string, error) {
	p := w.cfg.Policy
	rule := ""
	if p.ApproveAbove != "" {
		above, err := evm.ParseDecimal(p.ApproveAbove, c.asset.Decimals)
		if err != nil || c.amount.Cmp(above) > 0 {
			rule = "approve_above"
		}
	}
	if rule == "" && p.ApproveNewPayees {
		known, err := w.cfg.Ledger.KnownPayee(ctx, w.id, c.payTo)
		if err != nil {
			return "", err
		}
		if !known {
			rule = "new_payee"
		}
	}
	if rule == "" {
		return "", nil
	}
	if r.intent.ApprovalID != "" {
		return r.intent.ApprovalID, nil
	}
	id, err := newID("apr")
	if err != nil {
		return "", err
	}
	ttl := p.ApprovalTTL
	if ttl <= 0 {
		ttl = DefaultApprovalTTL
	}
	now := w.cfg.Now()
	u := routeOf(r.http.URL, r.http.Method)
	a := store.Approval{ID: id, Wallet: w.id, State: store.ApprovalPending, Rule: rule, Network: string(c.req.Network),
		Asset: c.asset.Address, Amount: c.amount, Payee: c.payTo, Host: r.host, Method: r.http.Method,
		URL: strings.TrimPrefix(u, r.http.Method+" "), Purpose: r.intent.Purpose, TaskID: r.intent.TaskID,
		Delegation: w.delegationID(), Created: now, Expires: now.Add(ttl)}
	e := withChoice(w.entry(r, store.KindPending), c)
	e.Rule, e.Approval = rule, id
	if err := w.cfg.Ledger.CreateApproval(context.WithoutCancel(ctx), a, e); err != nil {
		return "", err
	}
	return "", &ApprovalPendingError{ID: id, Rule: rule}
}

// spend is a reservation made for one payment.
type spend struct {
	id          string
	validBefore uint64
}

// authorizationSkew keeps a reservation counted a while after its authorization's validBefore,
// for a chain whose clock runs behind ours.
const authorizationSkew = time.Minute

// reserve records the spend against every applicable limit in one atomic ledger step.
func (w *Wallet) reserve(ctx context.Context, r *request, c *choice, approvalID string) (*spend, error) {
	limits, err := w.standingLimits(c.asset)
	if err != nil {
		return nil, w.refuse(ctx, r, c, &PolicyError{Rule: "budgets", Detail: err.Error(), Err: ErrOverBudget})
	}
	p := w.cfg.Policy
	if p.MaxPayment != "" {
		max, _ := evm.ParseDecimal(p.MaxPayment, c.asset.Decimals) // checked in allowed
		limits = append(limits, store.SpendLimit{Rule: "max_payment", Max: max})
	}
	for _, cp := range []struct {
		rule, scope string
		cap         Cap
	}{{"per_payee", store.ScopePayee(c.payTo), p.PerPayee}, {"per_host", store.ScopeHost(r.host), p.PerHost}} {
		if cp.cap.Limit == "" {
			continue
		}
		max, err := evm.ParseDecimal(cp.cap.Limit, c.asset.Decimals)
		if err != nil {
			return nil, w.refuse(ctx, r, c, &PolicyError{Rule: cp.rule, Detail: err.Error(), Err: ErrOverBudget})
		}
		window, _ := windowOf(cp.cap.Window)
		limits = append(limits, store.SpendLimit{Rule: cp.rule, Scope: cp.scope, Window: window, Max: max})
	}
	id, err := newID("spd")
	if err != nil {
		return nil, err
	}
	now := w.cfg.Now()
	life := time.Duration(c.req.MaxTimeoutSeconds) * time.Second
	if life <= 0 || life > w.cfg.MaxAuthorization {
		life = w.cfg.MaxAuthorization
	}
	validBefore := uint64(now.Add(life).Unix())
	scopes := []string{store.ScopeWallet, store.ScopePayee(c.payTo), store.ScopeHost(r.host)}
	var delegations []string
	for _, d := range w.chain {
		scopes = append(scopes, store.ScopeDelegation(d.ID))
		delegations = append(delegations, d.ID)
	}
	window := p.DuplicateWindow
	if window == 0 {
		window = DefaultDuplicateWindow
	}
	if r.intent.Again {
		window = 0
	}
	req := store.SpendRequest{ID: id, Wallet: w.id, Network: string(c.req.Network), Asset: c.asset.Address, Amount: c.amount,
		Payee: c.payTo, Host: r.host, Scopes: scopes, Limits: limits, Delegations: delegations,
		DupKey: dupKey(r.http, c), DupWindow: window, ApprovalID: approvalID, Now: now,
		Expires: time.Unix(int64(validBefore), 0).Add(authorizationSkew)}
	usage, err := w.cfg.Ledger.ReserveSpend(ctx, req)
	if err != nil {
		refusal := w.refusal(err, c, approvalID)
		if refusal == nil {
			return nil, err
		}
		return nil, w.refuse(ctx, r, c, refusal)
	}
	w.alerts(ctx, r, c, usage)
	return &spend{id: id, validBefore: validBefore}, nil
}

// dupKey identifies a request and its quote: the same method and URL asked to pay the same
// terms again.
func dupKey(req *http.Request, c *choice) [32]byte {
	h := sha256.New()
	for _, s := range []string{req.Method, req.URL.String(), string(c.req.Network), c.asset.Address.Hex(), c.payTo.Hex(), c.amount.String()} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// refusal turns a ledger refusal into the wallet's typed error (nil if err is no refusal).
func (w *Wallet) refusal(err error, c *choice, approvalID string) error {
	var le *store.LimitError
	switch {
	case errors.As(err, &le):
		return &OverBudgetError{Rule: le.Limit.Rule, Scope: le.Limit.Scope, Asset: c.asset, Limit: le.Limit.Max, Used: le.Used, Amount: c.amount}
	case errors.Is(err, store.ErrDuplicate):
		return &PolicyError{Rule: "duplicate_window", Detail: "set Intent.Again to pay again", Err: ErrDuplicatePayment}
	case errors.Is(err, store.ErrDelegationRevoked):
		return &PolicyError{Rule: "delegation", Detail: err.Error(), Err: ErrDelegationRevoked}
	case errors.Is(err, store.ErrDelegationExpired):
		return &PolicyError{Rule: "delegation", Detail: err.Error(), Err: ErrDelegationExpired}
	case errors.Is(err, store.ErrApprovalNotApproved):
		return &ApprovalPendingError{ID: approvalID, Rule: "approval"}
	case errors.Is(err, store.ErrApprovalDenied):
		return &PolicyError{Rule: "approval", Detail: err.Error(), Err: ErrApprovalDenied}
	case errors.Is(err, store.ErrApprovalUsed), errors.Is(err, store.ErrApprovalMismatch), errors.Is(err, store.ErrApprovalExpired):
		return &PolicyError{Rule: "approval", Detail: err.Error(), Err: ErrApprovalInvalid}
	case errors.Is(err, store.ErrNotFound):
		if approvalID != "" && strings.Contains(err.Error(), approvalID) {
			return &PolicyError{Rule: "approval", Detail: err.Error(), Err: ErrApprovalInvalid}
		}
		return &PolicyError{Rule: "delegation", Detail: err.Error(), Err: ErrUnknownDelegation}
	}
	return nil
}

// alerts reports each limit this spend took past the alert threshold: exactly one spend
// crosses it, since each saw the usage before and after itself in one atomic step.
func (w *Wallet) alerts(ctx context.Context, r *request, c *choice, usage []store.LimitUsage) {
	threshold := w.cfg.Policy.AlertThreshold
	if threshold == 0 {
		threshold = DefaultAlertThreshold
	}
	bp := big.NewInt(int64(threshold*10000 + 0.5))
	for _, u := range usage {
		if u.Limit.Scope == "" || u.Limit.Max.IsZero() {
			continue
		}
		before, _ := u.Used.Sub(c.amount)
		line := new(big.Int).Mul(u.Limit.Max.Big(), bp)
		after := new(big.Int).Mul(u.Used.Big(), big.NewInt(10000))
		prior := new(big.Int).Mul(before.Big(), big.NewInt(10000))
		if after.Cmp(line) < 0 || prior.Cmp(line) >= 0 {
			continue
		}
		a := Alert{Rule: u.Limit.Rule, Scope: u.Limit.Scope, Window: u.Limit.Window, Asset: c.asset, Limit: u.Limit.Max, Used: u.Used, Threshold: threshold}
		e := withChoice(w.entry(r, store.KindAlert), c)
		e.Rule = u.Limit.Rule
		e.Detail = fmt.Sprintf("%s (%s) at %s of %s, past %.0f%%", a.Rule, a.Scope, c.asset.Format(a.Used), c.asset.Format(a.Limit), threshold*100)
		w.cfg.Ledger.AppendJournal(context.WithoutCancel(ctx), e)
		if w.cfg.OnAlert != nil {
			w.cfg.OnAlert(a)
		}
	}
}

// hashBody wraps a paid response's body: when it has been read to its end or closed, the
// SHA-256 of the bytes delivered is journaled (kind "delivered") against the spend. Hashing
// as the body streams, rather than reading it first, keeps streaming responses streaming.
func (w *Wallet) hashBody(r *request, c *choice, spendID string, body io.ReadCloser) io.ReadCloser {
	return &hashingBody{body: body, hash: sha256.New(), done: func(sum []byte, n int64, complete bool) {
		e := withChoice(w.entry(r, store.KindDelivered), c)
		e.Spend, e.ResponseHash = spendID, hex.EncodeToString(sum)
		e.Detail = fmt.Sprintf("%d bytes, read to the end", n)
		if !complete {
			e.Detail = fmt.Sprintf("%d bytes, closed before the end", n)
		}
		w.cfg.Ledger.AppendJournal(context.WithoutCancel(r.http.Context()), e)
	}}
}

type hashingBody struct {
	body interface {
		io.Reader
		io.Closer
	}
	hash interface {
		io.Writer
		Sum([]byte) []byte
	}
	n    int64
	once sync.Once
	done func(sum []byte, n int64, complete bool)
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.hash.Write(p[:n])
	b.n += int64(n)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

func (b *hashingBody) Close() error {
	b.finish(false)
	return b.body.Close()
}

func (b *hashingBody) finish(complete bool) {
	b.once.Do(func() { b.done(b.hash.Sum(nil), b.n, complete) })
}
