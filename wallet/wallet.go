package wallet

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Config configures a Wallet. Zero values take the documented defaults.
type Config struct {
	// Key signs payments. Required.
	Key *ecdsa.PrivateKey
	// Assets are the tokens the wallet will pay in; their decimals and EIP-712 domains are
	// trusted, the server's are not. Required.
	Assets *evm.Registry
	// Max is the most one request may cost, in the asset's units as people write them ("0.05"
	// for five cents of a dollar stablecoin). Required: a wallet without a limit is a bug.
	Max string
	// MaxAuthorization bounds how long a signed authorization stays valid, whatever the server
	// asks. Default: 10 minutes.
	MaxAuthorization time.Duration
	// PendingWait bounds how long the wallet keeps presenting a payment whose settlement the
	// seller reports as pending (or could not finish) before giving up. It re-presents the same
	// signed payment, never a new one, so it cannot pay twice. Default: 20s.
	PendingWait time.Duration
	// Base sends the requests. Default: http.DefaultTransport.
	Base http.RoundTripper
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// OnPayment, if set, is called after every payment attempt with its outcome. It runs on the
	// request's goroutine before RoundTrip returns; it must not block for long.
	OnPayment func(Payment)

	// Policy adds budgets, caps, allow- and blocklists, approvals, the duplicate window and
	// preferences to Max. Optional.
	Policy *Policy
	// Ledger holds reservations, approvals, delegations and the journal, atomically. Use a
	// *store.DB to share them across processes. Default: a new MemoryLedger, which lives and
	// dies with the process.
	Ledger Ledger
	// ID names the wallet in the ledger. Default: the payer address in lowercase hex.
	ID string
	// Address identifies a wallet opened without Key, to administer it (approvals, delegations,
	// budgets, journal) from another process; such a wallet cannot pay.
	Address common.Address
	// OnAlert, if set, is called once each time a payment takes a budget past the policy's
	// alert threshold; the alert is journaled too. It runs on the request's goroutine.
	OnAlert func(Alert)
}

// Alert reports a budget passing its threshold.
type Alert struct {
	Rule      string // "budgets.day", "per_payee", "delegation", …
	Scope     string
	Window    time.Duration // 0 for a delegation's whole budget
	Asset     evm.Asset
	Limit     evm.Amount
	Used      evm.Amount
	Threshold float64
}

// Rail is the payment rail the wallet pays on, as journaled.
const Rail = "x402"

// Payment records one payment attempt.
type Payment struct {
	URL         string
	Asset       evm.Asset
	Amount      evm.Amount
	PayTo       common.Address
	Payer       common.Address
	Network     x402.Network
	Settled     bool
	Transaction string
	Reason      string
}

// Wallet pays for HTTP requests. It is safe for concurrent use.
type Wallet struct {
	cfg  Config
	addr common.Address
	id   string
	// chain is the delegation this wallet spends under, then its ancestors; empty for the owner.
	chain []store.Delegation
}

// Errors a paying request can return (wrapped in *url.Error by http.Client).
var (
	// ErrOverMax reports a price above the wallet's per-request maximum; nothing was paid.
	ErrOverMax = errors.New("wallet: price exceeds the per-request maximum")
	// ErrNoPayableOption reports a 402 offering nothing this wallet can pay: unknown assets,
	// chains or schemes; nothing was paid.
	ErrNoPayableOption = errors.New("wallet: no payment option this wallet can pay")
	// ErrBodyTooLarge reports a request body too large to keep for the paid retry.
	ErrBodyTooLarge = errors.New("wallet: request body too large to retry")
)

// maxReplayBody bounds the request body kept in memory for the retry after a 402.
const maxReplayBody = 8 << 20

// New returns a Wallet.
func New(cfg Config) (*Wallet, error) {
	if cfg.Key != nil && (cfg.Assets == nil || (cfg.Max == "" && (cfg.Policy == nil || cfg.Policy.MaxPayment == ""))) {
		return nil, errors.New("wallet: Key, Assets and Max (or Policy.MaxPayment) are required")
	}
	if cfg.Key == nil && cfg.Address == (common.Address{}) {
		return nil, errors.New("wallet: Key (or, to administer a wallet, Address) is required")
	}
	if cfg.Max != "" && !validDecimal(cfg.Max) {
		return nil, fmt.Errorf("wallet: Max %q is not a decimal amount", cfg.Max)
	}
	if cfg.Policy != nil {
		if err := cfg.Policy.Validate(); err != nil {
			return nil, err
		}
		if cfg.Policy.MaxAuthorization > 0 {
			cfg.MaxAuthorization = cfg.Policy.MaxAuthorization
		}
	} else {
		// Without a policy the wallet behaves as it always did: Max alone, no duplicate window.
		cfg.Policy = &Policy{DuplicateWindow: -1}
	}
	if cfg.Ledger == nil {
		cfg.Ledger = NewMemoryLedger()
	}
	if cfg.MaxAuthorization <= 0 {
		cfg.MaxAuthorization = 10 * time.Minute
	}
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	if cfg.PendingWait <= 0 {
		cfg.PendingWait = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	addr := cfg.Address
	if cfg.Key != nil {
		addr = crypto.PubkeyToAddress(cfg.Key.PublicKey)
	}
	id := cfg.ID
	if id == "" {
		id = strings.ToLower(addr.Hex())
	}
	return &Wallet{cfg: cfg, addr: addr, id: id}, nil
}

// ID returns the wallet's name in its ledger.
func (w *Wallet) ID() string { return w.id }

// Address returns the wallet's address.
func (w *Wallet) Address() common.Address { return w.addr }

// Client returns an *http.Client that pays through the wallet.
func (w *Wallet) Client() *http.Client { return &http.Client{Transport: w} }

// RoundTrip implements http.RoundTripper: it sends req, and on a 402 it applies the policy,
// pays and sends req once more. A second 402 is returned as it is; the wallet never pays twice
// for one request, nor, within the policy's duplicate window, for the same request and quote.
// Every decision is journaled with the request's Intent. Redirects reach RoundTrip as new
// requests, so a 402 from the host redirected to is judged by that host's rules.
func (w *Wallet) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	resp, err := w.cfg.Base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		return resp, err
	}
	offer, err := readOffer(resp)
	if err != nil {
		return nil, err
	}
	r := &request{http: req, intent: IntentFrom(req.Context()), route: routeOf(req.URL, req.Method)}
	if r.host, err = normalizeHost(req.URL.Host); err != nil {
		r.host = strings.ToLower(req.URL.Hostname())
		return nil, w.refuse(req.Context(), r, nil, &PolicyError{Rule: "host", Detail: err.Error(), Err: ErrHostNotAllowed})
	}
	return w.pay(r, body, offer)
}

// present sends req with the signed payment, and sends the same payment again, with backoff,
// while the seller answers that its settlement is pending or that it could not finish it: the
// money may already have moved, and only this payment can collect what it bought.
func (w *Wallet) present(req *http.Request, body []byte, header, value string) (*http.Response, error) {
	deadline := w.cfg.Now().Add(w.cfg.PendingWait)
	delay := 250 * time.Millisecond
	for {
		retry := req.Clone(req.Context())
		if body != nil {
			retry.Body = io.NopCloser(bytes.NewReader(body))
			retry.ContentLength = int64(len(body))
		}
		retry.Header.Set(header, value)
		resp, err := w.cfg.Base.RoundTrip(retry)
		if err != nil || !settlementUnfinished(resp) || w.cfg.Now().Add(delay).After(deadline) {
			return resp, err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 4*time.Second)
	}
}

// settlementUnfinished reports a paid request answered before its settlement was known: a 402
// whose settlement is pending, or a 503 from a seller that could not reach its facilitator.
func settlementUnfinished(resp *http.Response) bool {
	if resp.StatusCode == http.StatusServiceUnavailable {
		return true
	}
	if resp.StatusCode != http.StatusPaymentRequired {
		return false
	}
	s, ok := Settlement(resp)
	return ok && !s.Success && s.ErrorReason == x402.ReasonSettlementPending
}

func replayableBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(b) > maxReplayBody {
		return nil, ErrBodyTooLarge
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// offer is a 402 in the v2 form, whichever version the server spoke.
type offer struct {
	version  int
	required *x402.PaymentRequired
	v1       []x402.V1Requirements
}

// readOffer reads the 402's terms: the PAYMENT-REQUIRED header (v2), or a v1 body.
func readOffer(resp *http.Response) (*offer, error) {
	defer resp.Body.Close()
	if h := resp.Header.Get(x402.HeaderPaymentRequired); h != "" {
		pr, err := x402.DecodePaymentRequired(h)
		if err != nil {
			return nil, fmt.Errorf("wallet: reading 402: %w", err)
		}
		return &offer{version: x402.V2, required: pr}, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("wallet: reading 402 body: %w", err)
	}
	var v1 x402.V1PaymentRequired
	if json.Unmarshal(b, &v1) != nil || v1.X402Version != x402.V1 {
		return nil, fmt.Errorf("%w: the 402 carries no x402 terms", ErrNoPayableOption)
	}
	o := &offer{version: x402.V1, required: &x402.PaymentRequired{X402Version: x402.V1}, v1: v1.Accepts}
	for _, r := range v1.Accepts {
		r2, err := r.ToV2()
		if err != nil {
			r2 = x402.PaymentRequirements{} // keeps indexes aligned; an empty option is never chosen
		}
		o.required.Accepts = append(o.required.Accepts, r2)
	}
	return o, nil
}

// payable reports whether r is an exact payment in a trusted asset on a chain the wallet knows.
func (w *Wallet) payable(r x402.PaymentRequirements) (*choice, bool) {
	chainID, ok := r.Network.ChainID()
	if !ok || r.Scheme != x402.SchemeExact {
		return nil, false
	}
	assetAddr, err := evm.ParseAddress(r.Asset)
	if err != nil {
		return nil, false
	}
	asset, ok := w.cfg.Assets.Lookup(chainID, assetAddr)
	if !ok {
		return nil, false
	}
	payTo, err := evm.ParseAddress(r.PayTo)
	if err != nil {
		return nil, false
	}
	amount, err := evm.ParseAmount(r.Amount)
	if err != nil || amount.IsZero() {
		return nil, false
	}
	return &choice{req: r, asset: asset, amount: amount, payTo: payTo}, true
}

// sign builds the payment header for c, with the EIP-712 domain from the registry.
func (w *Wallet) sign(o *offer, c *choice, validBefore uint64) (header, value string, err error) {
	nonce, err := evm.NewNonce()
	if err != nil {
		return "", "", err
	}
	auth := evm.Authorization{
		From:        w.addr,
		To:          c.payTo,
		Value:       c.amount,
		ValidAfter:  0,
		ValidBefore: validBefore,
		Nonce:       nonce,
	}
	sig, err := evm.SignAuthorization(w.cfg.Key, c.asset.Domain(), &auth)
	if err != nil {
		return "", "", err
	}
	payload, err := json.Marshal(x402.ExactEVMPayload{Authorization: auth.Wire(), Signature: sig.String()})
	if err != nil {
		return "", "", err
	}
	if o.version == x402.V1 {
		value, err = x402.EncodeHeader(x402.V1PaymentPayload{
			X402Version: x402.V1, Scheme: o.v1[c.index].Scheme, Network: o.v1[c.index].Network, Payload: payload,
		})
		return x402.HeaderPaymentV1, value, err
	}
	accepted := c.req
	value, err = x402.EncodeHeader(x402.PaymentPayload{
		X402Version: x402.V2,
		Resource:    o.required.Resource,
		Accepted:    &accepted,
		Payload:     payload,
		Extensions:  o.required.Extensions,
	})
	return x402.HeaderPaymentSignature, value, err
}

func (w *Wallet) record(req *http.Request, c *choice, resp *http.Response) {
	if w.cfg.OnPayment == nil {
		return
	}
	p := Payment{URL: req.URL.String(), Asset: c.asset, Amount: c.amount, PayTo: c.payTo, Payer: w.addr, Network: c.req.Network}
	if s, ok := Settlement(resp); ok {
		p.Settled, p.Transaction, p.Reason = s.Success, s.Transaction, string(s.ErrorReason)
	}
	w.cfg.OnPayment(p)
}

// Settlement reads the settlement a paid response reports (PAYMENT-RESPONSE, or
// X-PAYMENT-RESPONSE from a v1 server).
func Settlement(resp *http.Response) (*x402.SettleResponse, bool) {
	h := resp.Header.Get(x402.HeaderPaymentResponse)
	if h == "" {
		h = resp.Header.Get(x402.HeaderPaymentV1Response)
	}
	if h == "" {
		return nil, false
	}
	s, err := x402.DecodeSettleResponse(h)
	return s, err == nil
}
