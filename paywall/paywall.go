package paywall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/capability"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Facilitator verifies and settles x402 payments. *facilitator.Facilitator (in process) and
// *facilitator.Client (over HTTP) both have these methods. Invalid payments are answers with a
// reason; errors mean the facilitator could not decide.
type Facilitator interface {
	Verify(ctx context.Context, p *x402.PaymentPayload, r x402.PaymentRequirements) (*x402.VerifyResponse, error)
	Settle(ctx context.Context, p *x402.PaymentPayload, r x402.PaymentRequirements) (*x402.SettleResponse, error)
}

// Config configures a Paywall. Zero values take the documented defaults.
type Config struct {
	// Facilitator verifies and settles x402 payments. Required.
	Facilitator Facilitator
	// ChainID is the EVM chain payments are made on. Required.
	ChainID uint64
	// PayTo receives the payments. Required.
	PayTo common.Address
	// Assets resolves "$" prices and atomic prices to trusted tokens. Default:
	// evm.DefaultRegistry().
	Assets *evm.Registry
	// Claims makes each payment single-use across requests (and across instances, when shared).
	// Default: in memory.
	Claims store.Claims
	// MaxTimeout is the maxTimeoutSeconds offered to buyers: how long their authorization stays
	// valid. Default: 60s.
	MaxTimeout time.Duration
	// V1Body makes the 402 body the x402 version 1 form, for legacy clients that read only the
	// body. The PAYMENT-REQUIRED header is sent either way.
	V1Body bool
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives one event per payment decision. Default: none.
	Logger *slog.Logger

	// Secret seals quotes and derives capability tokens' root keys; at least 32 random bytes,
	// the same on every instance behind one address. Required by routes offering quotes or
	// capability tokens.
	Secret []byte
	// Records remembers payers (known buyers, blocks) and what the admin sees: payments,
	// revenue per route, refusals. Default: none (no payer is known; only Policy.Block blocks).
	Records Records
	// Spend counts payments per payer and window for Policy.Spend. Required by routes with a
	// spend limit.
	Spend SpendLedger
	// Uses counts capability-token uses. Required by routes issuing capability tokens.
	Uses CapabilityUses
	// Balances reads payers' on-chain balances for Policy.MinBalance (see ChainBalances).
	// Required by routes with a minimum balance.
	Balances BalanceChecker
	// Policy applies to routes without a Policy of their own. Default: everyone may buy.
	Policy *Policy
}

// Route is what one protected route charges.
type Route struct {
	// Method and Path name the route for discovery, quotes and capability scopes: "GET" and
	// "/v1/weather" (a path ending in "*" covers every path it prefixes). A route with a Path is
	// listed by Discovery and can be quoted; Method "" means any method.
	Method string
	Path   string

	// Price is "$0.01" (the chain's default dollar stablecoin) or "<atomic units> <asset
	// address>": the price for every request, or for unknown buyers when KnownPrice is set.
	Price string
	// KnownPrice, when set, is the price for known buyers (see Buyer), typically lower.
	KnownPrice string
	// Pricer, when set, decides each request's price instead of Price and KnownPrice; Price, if
	// also set, is only the price discovery publishes.
	Pricer Pricer
	// Quote lets buyers ask POST /.well-known/quid/quote for a price bound to one request
	// (see QuotePolicy). Routes without it keep their published prices.
	Quote *QuotePolicy
	// Policy decides who may buy; Config.Policy when nil.
	Policy *Policy
	// Terms are disclosed before payment, in the requirements' extra and in discovery.
	Terms *Terms
	// Capability, when set, issues a capability token after each settled payment.
	Capability *CapabilityPolicy
	// InputSchema and OutputSchema are JSON Schemas of the request and response bodies, for
	// discovery and the bazaar extension.
	InputSchema  json.RawMessage
	OutputSchema json.RawMessage

	// Description and MimeType describe the resource to buyers before they pay.
	Description string
	MimeType    string
	// Settle chooses when value moves. Default: SettleAfter.
	Settle SettleMode
	// Extensions are x402 extension declarations for the 402 (PaymentRequired.extensions), such
	// as a "bazaar" discovery declaration; buyers echo them in their payments.
	Extensions x402.Object
	// PaymentIdentifier, if set, declares the payment-identifier extension and makes resent
	// payments idempotent (see PaymentIdentifier).
	PaymentIdentifier *PaymentIdentifier
}

// SettleMode chooses when a route's payment is settled.
type SettleMode int

const (
	// SettleAfter runs the handler with its response buffered, settles if the handler succeeded
	// (status below 400), and writes the response only once settlement succeeded.
	SettleAfter SettleMode = iota
	// SettleBefore settles before the handler runs, for handlers whose side effects must not
	// happen unpaid. The handler streams its response directly.
	SettleBefore
	// SettleDeferred serves once the payment is verified, reserved and queued, and settles it
	// later in a batch with others, at about two thirds of the gas. Meanwhile the seller extends
	// credit: the payer could cancel its authorization or spend its balance first. The
	// facilitator caps that credit per payer (facilitator.Config.MaxDeferred); a payment past the
	// cap is settled before serving, as with SettleAfter. A handler answering 400 or above
	// withdraws the payment. The facilitator must be able to defer (see Deferrer).
	SettleDeferred
	// SettleOnCommit settles when the handler commits its response (its first WriteHeader,
	// Write or Flush), for streams that cannot be buffered. A handler committing a status of 400
	// or above is passed through and nothing is charged; if settlement fails, nothing the
	// handler wrote reaches the buyer, who gets the 402. Once settled, the response streams
	// through unbuffered (Flush passes through). Work the handler does before committing
	// happens unpaid, as with SettleAfter.
	SettleOnCommit
)

var settleModeNames = [...]string{SettleAfter: "after", SettleBefore: "before", SettleDeferred: "deferred", SettleOnCommit: "commit"}

// String returns the mode's name: "after", "before", "deferred" or "commit".
func (m SettleMode) String() string {
	if int(m) < len(settleModeNames) {
		return settleModeNames[m]
	}
	return "SettleMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseSettleMode reads a mode's name as String writes it; "" is SettleAfter.
func ParseSettleMode(s string) (SettleMode, error) {
	if s == "" {
		return SettleAfter, nil
	}
	for m, name := range settleModeNames {
		if name == s {
			return SettleMode(m), nil
		}
	}
	return 0, fmt.Errorf("paywall: unknown settle mode %q (after, before, deferred, commit)", s)
}

// Deferrer queues payments for batch settlement. An in-process *facilitator.Facilitator with a
// batch settler has these methods.
type Deferrer interface {
	// Defer verifies and queues a payment, held until Release. A refusal with
	// x402.ReasonDeferralLimit means: settle this one now instead.
	Defer(ctx context.Context, p *x402.PaymentPayload, r x402.PaymentRequirements) (*x402.VerifyResponse, error)
	// Release lets a queued payment be batched.
	Release(ctx context.Context, key store.Key) error
	// Cancel withdraws a payment that is still queued.
	Cancel(ctx context.Context, key store.Key) (bool, error)
}

// Paywall charges for routes. It is safe for concurrent use.
type Paywall struct {
	cfg   Config
	rails []Rail
	log   *slog.Logger
	keys  capability.Keys
	rate  *rateLimiter
	tally *tally // nil without Records

	mu     sync.RWMutex
	routes []*route // routes with a Path, for discovery and quotes
}

// New returns a Paywall accepting x402 exact payments on cfg.ChainID.
func New(cfg Config) (*Paywall, error) {
	if cfg.Facilitator == nil || cfg.ChainID == 0 || cfg.PayTo == (common.Address{}) {
		return nil, errors.New("paywall: Facilitator, ChainID and PayTo are required")
	}
	if cfg.Assets == nil {
		cfg.Assets = evm.DefaultRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Claims == nil {
		cfg.Claims = &store.MemoryClaims{Now: cfg.Now}
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 60 * time.Second
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < minSecret {
		return nil, fmt.Errorf("paywall: Secret must be at least %d bytes", minSecret)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Paywall{cfg: cfg, log: log, keys: capability.Keys{Secret: cfg.Secret}, rate: newRateLimiter(cfg.Now)}
	if cfg.Records != nil {
		p.tally = &tally{records: cfg.Records, log: log}
	}
	p.rails = []Rail{&x402Rail{cfg: &p.cfg}}
	return p, nil
}

// minSecret is the shortest Config.Secret accepted.
const minSecret = 32

// Middleware returns middleware that charges route's price for every request it wraps.
func Middleware(cfg Config, route Route) (func(http.Handler) http.Handler, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return p.Charge(route)
}

// Charge returns middleware that charges route's price. Fixed prices are read once, here; a
// route with a Path is registered for Discovery and QuoteHandler.
func (p *Paywall) Charge(route Route) (func(http.Handler) http.Handler, error) {
	rt, err := p.compile(route)
	if err != nil {
		return nil, err
	}
	if rt.Path != "" {
		p.mu.Lock()
		p.routes = append(p.routes, rt)
		p.mu.Unlock()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.handle(w, r, rt, next) })
	}, nil
}

// handle is one request on a charged route: a capability token or a quote if it carries one,
// else the route's price for this request and buyer.
func (p *Paywall) handle(w http.ResponseWriter, r *http.Request, rt *route, next http.Handler) {
	exposeHeaders(w.Header())
	if answerCORS(w, r) {
		return
	}
	var cause error // why a credential other than a payment was refused
	if token := capabilityToken(r); token != "" {
		served, err := p.serveCapability(w, r, rt, next, token)
		if served {
			return
		}
		cause = err
	}
	var quote *sealedQuote
	if h := r.Header.Get(HeaderQuote); h != "" {
		q, err := p.openQuote(h, rt, r)
		if err != nil {
			cause = err
		} else {
			quote = q
			r = r.WithContext(context.WithValue(r.Context(), quoteKey{}, AcceptedQuote{ID: q.id, Amount: q.amount, Asset: q.asset, TaskSHA256: q.task}))
		}
	}
	charge, err := p.price(r, rt, quote)
	if err != nil {
		p.log.Error("pricing a request", "route", rt.pattern, "err", err)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Cache-Control", "no-store")
		writeJSONReason(w, http.StatusServiceUnavailable, ReasonPricingUnavailable, "the price of this request could not be decided")
		return
	}
	if charge == nil { // free
		next.ServeHTTP(w, r)
		return
	}
	if quote == nil && cause != nil && r.Header.Get(HeaderQuote) != "" {
		// A bad quote is refused even with a payment: the buyer meant to pay that quote.
		p.recordRefusal(r, rt, common.Address{}, cause, http.StatusPaymentRequired)
		p.refuse(w, r, charge, cause)
		return
	}
	rt.ids.serve(w, r, func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, next, rt, charge, cause) })
}

func (p *Paywall) serve(w http.ResponseWriter, r *http.Request, next http.Handler, rt *route, charge *Charge, cause error) {
	ctx := r.Context()
	mode := rt.Settle
	pay, err := p.payment(r, charge)
	if errors.Is(err, ErrNoCredential) && cause != nil {
		err = cause
	}
	if err != nil {
		if !errors.Is(err, ErrNoCredential) {
			p.recordRefusal(r, rt, common.Address{}, err, http.StatusPaymentRequired)
		}
		p.refuse(w, r, charge, err)
		return
	}
	if resuming, err := p.cfg.Claims.TakePending(ctx, pay.Key()); err != nil {
		p.refuse(w, r, charge, fmt.Errorf("%w: claim store: %v", ErrUnavailable, err))
		return
	} else if resuming {
		p.resume(w, r, next, rt, charge, pay)
		return
	}
	payer := payerAddress(pay)
	// Access policy, once the payer is known and before anything is verified or settled: a
	// refused payer's payment is never settled.
	refund, err := p.admit(r, rt, payer, charge)
	if err != nil {
		p.forbid(w, r, rt, payer, err)
		return
	}
	// keep is set once value moved or may have moved; until then the admitted spend is given
	// back when the request ends.
	keep := false
	defer func() {
		if !keep {
			refund()
		}
	}()
	if d, ok := pay.(deferrable); ok && mode == SettleDeferred {
		queued, err := d.Defer(ctx)
		if err != nil {
			p.refuse(w, r, charge, err)
			return
		}
		if queued {
			keep = p.serveDeferred(w, r, next, rt, charge, pay, d)
			return
		}
		// Past the payer's credit: settle before serving, as SettleAfter does.
		mode = SettleAfter
	}
	if err := pay.Verify(ctx); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			p.recordRefusal(r, rt, payer, err, http.StatusPaymentRequired)
		}
		p.refuse(w, r, charge, err)
		return
	}
	claimed, err := p.cfg.Claims.Claim(ctx, pay.Key(), pay.Expires())
	if err != nil {
		p.refuse(w, r, charge, fmt.Errorf("%w: claim store: %v", ErrUnavailable, err))
		return
	}
	if !claimed {
		p.log.Warn("payment replayed", "payer", pay.Payer(), "url", charge.Resource.URL)
		p.recordRefusal(r, rt, payer, ErrReplayed, http.StatusPaymentRequired)
		p.refuse(w, r, charge, ErrReplayed)
		return
	}

	switch mode {
	case SettleBefore:
		receipt, settled, ok := p.settle(w, r, charge, pay)
		keep = settled
		if !ok {
			return
		}
		paidHeaders(w.Header(), receipt)
		p.issue(w.Header(), r, rt, payer)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status >= 400 {
			// Paid but not served. quid does not refund on chain: the payment is recorded as
			// unserved for the seller to settle with the payer.
			p.log.Warn("handler failed after its payment was settled; recorded as unserved, not refunded",
				"payer", pay.Payer(), "url", charge.Resource.URL, "status", sw.status, "tx", receipt.Transaction)
		}
		p.record(r, rt, charge, pay, receipt, sw.code())
		return
	case SettleOnCommit:
		cw := &commitWriter{w: w, header: http.Header{}}
		cw.commit = func(status int) bool {
			if status >= 400 {
				// The handler refused before anything was settled: nothing is charged.
				p.release(ctx, pay)
				return true
			}
			receipt, settled, ok := p.settle(w, r, charge, pay)
			keep = settled
			if !ok {
				return false
			}
			paidHeaders(cw.header, receipt)
			p.issue(cw.header, r, rt, payer)
			p.record(r, rt, charge, pay, receipt, status)
			return true
		}
		next.ServeHTTP(cw, r)
		cw.finish()
		return
	}

	buf := newBufferedWriter()
	next.ServeHTTP(buf, r)
	if buf.status >= 400 {
		// The handler refused; nothing is charged and the authorization may be used again.
		p.release(ctx, pay)
		buf.writeTo(w)
		return
	}
	receipt, settled, ok := p.settle(w, r, charge, pay)
	keep = settled
	if !ok {
		return
	}
	paidHeaders(buf.header, receipt)
	p.issue(buf.header, r, rt, payer)
	p.record(r, rt, charge, pay, receipt, buf.code())
	buf.writeTo(w)
}

// release frees the claim of a payment that moved no value.
func (p *Paywall) release(ctx context.Context, pay Payment) {
	if err := p.cfg.Claims.Release(context.WithoutCancel(ctx), pay.Key()); err != nil {
		p.log.Warn("releasing claim", "err", err)
	}
}

// serveDeferred serves a payment queued for batch settlement. The claim makes it single-use
// here as everywhere; a handler that fails withdraws it, so nothing is charged for it. It
// reports whether the payment stays queued (to be paid).
func (p *Paywall) serveDeferred(w http.ResponseWriter, r *http.Request, next http.Handler, rt *route, charge *Charge, pay Payment, d deferrable) bool {
	ctx := r.Context()
	claimed, err := p.cfg.Claims.Claim(ctx, pay.Key(), pay.Expires())
	if err != nil || !claimed {
		d.Cancel(context.WithoutCancel(ctx))
		if err != nil {
			p.refuse(w, r, charge, fmt.Errorf("%w: claim store: %v", ErrUnavailable, err))
			return false
		}
		p.refuse(w, r, charge, ErrReplayed)
		return false
	}
	buf := newBufferedWriter()
	next.ServeHTTP(buf, r)
	if buf.status >= 400 {
		if err := d.Cancel(context.WithoutCancel(ctx)); err != nil {
			p.log.Error("withdrawing a deferred payment after the handler failed", "payer", pay.Payer(), "err", err)
		}
		p.cfg.Claims.Release(ctx, pay.Key())
		buf.writeTo(w)
		return false
	}
	if err := d.Release(context.WithoutCancel(ctx)); err != nil {
		// It stays held for a minute, then joins a batch anyway.
		p.log.Warn("releasing a deferred payment", "payer", pay.Payer(), "err", err)
	}
	p.log.Info("served on credit", "payer", pay.Payer(), "url", charge.Resource.URL, "amount", charge.Asset.Format(charge.Amount))
	p.record(r, rt, charge, pay, &Receipt{}, buf.code())
	buf.header.Set("Cache-Control", "private")
	buf.header.Add("Vary", "PAYMENT-SIGNATURE, X-PAYMENT")
	buf.writeTo(w)
	return true
}

// resume finishes a payment whose settlement was sent on an earlier request but whose outcome
// was not known then. The payer presents the same payment again; settling it again makes the
// facilitator look the transaction up rather than send another, and the facilitator reports a
// success to one request only. Once paid, the handler runs and its response is served: the
// first request's response was withheld.
func (p *Paywall) resume(w http.ResponseWriter, r *http.Request, next http.Handler, rt *route, charge *Charge, pay Payment) {
	receipt, _, ok := p.settleAs(w, r, charge, pay, true)
	if !ok {
		return
	}
	buf := newBufferedWriter()
	next.ServeHTTP(buf, r)
	paidHeaders(buf.header, receipt)
	p.issue(buf.header, r, rt, payerAddress(pay))
	p.record(r, rt, charge, pay, receipt, buf.code())
	buf.writeTo(w)
}

// settle settles pay and, when it did not succeed, answers the request itself. A settlement
// whose outcome is unknown is remembered, so that the payer presenting the same payment again
// resumes it instead of being refused as a replay. moved reports that value moved or may have.
func (p *Paywall) settle(w http.ResponseWriter, r *http.Request, charge *Charge, pay Payment) (receipt *Receipt, moved, ok bool) {
	return p.settleAs(w, r, charge, pay, false)
}

// settleAs is settle; resuming says the request took the payment's pending mark (no other
// request can hold it, and this paywall never served the payment), so a settlement that
// already happened, whose success went unheard, pays for it.
func (p *Paywall) settleAs(w http.ResponseWriter, r *http.Request, charge *Charge, pay Payment, resuming bool) (*Receipt, bool, bool) {
	receipt, err := pay.Settle(r.Context())
	if err != nil {
		// Outcome unknown: the claim stays, so the payment cannot buy a second response.
		p.setPending(r.Context(), pay, true)
		p.log.Error("settlement outcome unknown", "payer", pay.Payer(), "err", err)
		p.refuse(w, r, charge, fmt.Errorf("%w: %v", ErrUnavailable, err))
		return nil, true, false
	}
	if resuming && receipt.AlreadySettled {
		receipt.Settled = true
	}
	if !receipt.Settled {
		p.setPending(r.Context(), pay, receipt.Pending)
		p.log.Warn("settlement failed", "payer", pay.Payer(), "reason", receipt.Reason, "tx", receipt.Transaction)
		copyHeader(w.Header(), receipt.Header)
		w.Header().Set("Cache-Control", "no-store")
		writeJSONError(w, http.StatusPaymentRequired, receipt.Reason)
		return nil, receipt.Pending, false
	}
	p.setPending(r.Context(), pay, false)
	p.log.Info("paid", "payer", pay.Payer(), "url", charge.Resource.URL, "amount", charge.Asset.Format(charge.Amount), "tx", receipt.Transaction)
	return receipt, true, true
}

func (p *Paywall) payment(r *http.Request, charge *Charge) (Payment, error) {
	for _, rail := range p.rails {
		pay, err := rail.Payment(r, charge)
		if errors.Is(err, ErrNoCredential) {
			continue
		}
		return pay, err
	}
	return nil, ErrNoCredential
}

// setPending records in the claim store whether pay's settlement outcome is unknown. The claim
// is kept an hour past the authorization's expiry: its settlement may have been mined just
// before, and the payer may come back for what it paid for.
func (p *Paywall) setPending(ctx context.Context, pay Payment, pending bool) {
	if err := p.cfg.Claims.SetPending(context.WithoutCancel(ctx), pay.Key(), pending, pay.Expires().Add(time.Hour)); err != nil {
		p.log.Error("recording a settlement of unknown outcome", "payer", pay.Payer(), "err", err)
	}
}

// refuse answers a request that will not be served: 402 with every rail's terms when the buyer
// can still pay, 503 when a payment service could not be asked. This is the one place refusals
// are rendered.
func (p *Paywall) refuse(w http.ResponseWriter, r *http.Request, charge *Charge, cause error) {
	if errors.Is(cause, ErrUnavailable) {
		p.log.Error("payment service unavailable", "err", cause)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Cache-Control", "no-store")
		writeJSONError(w, http.StatusServiceUnavailable, "payment service unavailable")
		return
	}
	if errors.Is(cause, ErrNoCredential) {
		cause = nil
	}
	ch := &Challenge{Header: http.Header{}}
	for _, rail := range p.rails {
		if err := rail.Offer(r, charge, cause, ch); err != nil {
			p.log.Error("building 402", "err", err)
			writeJSONError(w, http.StatusInternalServerError, "cannot build payment requirements")
			return
		}
	}
	copyHeader(w.Header(), ch.Header)
	w.Header().Set("Cache-Control", "no-store")
	body := ch.Body
	if body == nil {
		body = []byte("{}")
	}
	body = p.body402(w.Header(), r, charge, cause, body)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusPaymentRequired)
	w.Write(body)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

// paidHeaders marks a paid response: the rail's receipt headers, and no shared caching, since a
// cache would hand paid content to the next, unpaying, client.
func paidHeaders(h http.Header, receipt *Receipt) {
	copyHeader(h, receipt.Header)
	h.Set("Cache-Control", "private")
	h.Add("Vary", "PAYMENT-SIGNATURE, X-PAYMENT")
	exposeHeaders(h)
}

// exposeHeaders lets browser clients read the payment headers across origins.
func exposeHeaders(h http.Header) {
	h.Set("Access-Control-Expose-Headers", "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, "+HeaderCapability)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

// resourceURL is the URL the buyer asked for, as the buyer addressed it.
func resourceURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// bufferedWriter holds a handler's response until the paywall decides to release it.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedWriter() *bufferedWriter { return &bufferedWriter{header: http.Header{}} }

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) writeTo(w http.ResponseWriter) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	dst := w.Header()
	for k, vs := range b.header {
		dst[k] = vs
	}
	if dst.Get("Content-Length") == "" && dst.Get("Transfer-Encoding") == "" {
		dst.Set("Content-Length", strconv.Itoa(b.body.Len()))
	}
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}
