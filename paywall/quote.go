package paywall

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// QuotePath is where QuoteHandler is meant to be mounted.
const QuotePath = "/.well-known/quid/quote"

// HeaderQuote carries a quote's id on the paid request.
const HeaderQuote = "Quid-Quote"

// DefaultQuoteTTL is how long a quote holds unless QuotePolicy.TTL says otherwise.
const DefaultQuoteTTL = 5 * time.Minute

// QuotePolicy lets buyers negotiate a route's price for one task before paying.
//
// A quote is sealed with Config.Secret, so the paywall keeps no state for it. The payment for a
// quote must carry, as its EIP-3009 nonce, the nonce given in the quote: an HMAC over the quote
// id, the method, the path, the price, the asset and the payee. The paywall recomputes it, so a
// payment made for a quote cannot be spent on another route or at another price, and, the nonce
// being single-use on chain, a quote is paid at most once.
type QuotePolicy struct {
	// TTL is how long a quote holds. Default: DefaultQuoteTTL.
	TTL time.Duration
	// Quoter prices a task. Default: the route's own price for the request described.
	Quoter Quoter
}

// A Quoter prices a task described by a buyer: a price as in Route.Price.
type Quoter interface {
	Quote(ctx context.Context, q QuoteRequest) (string, error)
}

// QuoterFunc adapts a function to a Quoter.
type QuoterFunc func(ctx context.Context, q QuoteRequest) (string, error)

// Quote implements Quoter.
func (f QuoterFunc) Quote(ctx context.Context, q QuoteRequest) (string, error) { return f(ctx, q) }

// QuoteRequest is the body of POST /.well-known/quid/quote.
type QuoteRequest struct {
	// Method and Path are the request the buyer means to pay for.
	Method string `json:"method"`
	Path   string `json:"path"`
	// Task describes the work, for the Quoter.
	Task string `json:"task,omitempty"`
	// Payer is the address the buyer will pay from. It is checked but does not change the
	// price: a quote can be paid from any address, so it is priced as for an unknown buyer.
	Payer string `json:"payer,omitempty"`
}

// Quote is the answer of the quote endpoint.
type Quote struct {
	// ID is the quote: present it in the Quid-Quote header of the paid request.
	ID     string `json:"quote_id"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Price is in atomic units of Asset.
	Price     string       `json:"price"`
	Asset     string       `json:"asset"`
	Network   x402.Network `json:"network"`
	PayTo     string       `json:"pay_to"`
	ExpiresAt int64        `json:"expires_at"`
	// Nonce is the EIP-3009 nonce the payment must carry (0x and 64 hex digits).
	Nonce string `json:"nonce"`
	// Accepts are the requirements to sign, the quote's terms in their extra.
	Accepts []x402.PaymentRequirements `json:"accepts"`
}

// QuoteHandler serves POST /.well-known/quid/quote for the routes of this paywall that offer
// quotes: a QuoteRequest in, a Quote out. Unknown or unquotable routes get 404, bad requests
// 400, each with a JSON {"error", "reason"} body.
func (p *Paywall) QuoteHandler() http.Handler {
	return http.HandlerFunc(p.serveQuote)
}

// maxQuoteHeader and maxQuoteBody bound what the quote endpoint and the Quid-Quote header read.
const (
	maxQuoteHeader = 2048
	maxQuoteBody   = 64 << 10
)

// quoteClaims are a quote's sealed content.
type quoteClaims struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	Route   string `json:"r"`
	Method  string `json:"m"`
	Path    string `json:"p"`
	Amount  string `json:"a"`
	Asset   string `json:"t"`
	Expires int64  `json:"x"`
	Task    string `json:"h,omitempty"` // sha256 of the task, hex
}

// sealedQuote is a quote that checked out.
type sealedQuote struct {
	id      string // the sealed form, as presented
	amount  evm.Amount
	asset   common.Address
	expires time.Time
	nonce   [32]byte
	task    [32]byte
}

// AcceptedQuote is the quote a request is paid under.
type AcceptedQuote struct {
	ID     string
	Amount evm.Amount
	Asset  common.Address
	// TaskSHA256 is the SHA-256 of the task the quote was made for; zero when none was given.
	// The quote binds the method, path and price, not the body: a handler that prices by task
	// checks that the request is the task quoted.
	TaskSHA256 [32]byte
}

type quoteKey struct{}

// PaidQuote returns the quote r presented, for the handler of a quotable route.
func PaidQuote(r *http.Request) (AcceptedQuote, bool) {
	q, ok := r.Context().Value(quoteKey{}).(AcceptedQuote)
	return q, ok
}

func (p *Paywall) quoteKey(purpose string) []byte {
	m := hmac.New(sha256.New, p.cfg.Secret)
	m.Write([]byte("quid quote " + purpose))
	return m.Sum(nil)
}

// quoteNonce is the EIP-3009 nonce a quote's payment must carry: an HMAC binding the quote id to
// the request (method, path), the price (amount, asset), the payee and the chain.
func (p *Paywall) quoteNonce(c *quoteClaims) [32]byte {
	m := hmac.New(sha256.New, p.quoteKey("nonce"))
	for _, part := range []string{"v1", c.ID, c.Method, c.Path, c.Amount, c.Asset, p.cfg.PayTo.Hex(),
		strconv.FormatUint(p.cfg.ChainID, 10), strconv.FormatInt(c.Expires, 10)} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	var n [32]byte
	copy(n[:], m.Sum(nil))
	return n
}

func (p *Paywall) seal(c *quoteClaims) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, p.quoteKey("seal"))
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// openQuote checks a presented quote: its seal, that it was made for this route and request,
// and that it has not expired.
func (p *Paywall) openQuote(h string, rt *route, r *http.Request) (*sealedQuote, error) {
	invalid := func(msg string) error { return &x402.Error{Reason: ReasonQuoteInvalid, Message: msg} }
	if len(p.cfg.Secret) == 0 {
		return nil, invalid("this seller makes no quotes")
	}
	h = strings.TrimSpace(h)
	if len(h) > maxQuoteHeader {
		return nil, invalid("quote too long")
	}
	b64body, b64mac, ok := strings.Cut(h, ".")
	if !ok {
		return nil, invalid("not a quote")
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	mac, err2 := base64.RawURLEncoding.DecodeString(b64mac)
	if err1 != nil || err2 != nil {
		return nil, invalid("not a quote")
	}
	m := hmac.New(sha256.New, p.quoteKey("seal"))
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return nil, invalid("the quote's seal does not check out")
	}
	var c quoteClaims
	if err := json.Unmarshal(body, &c); err != nil || c.V != 1 {
		return nil, invalid("unknown quote format")
	}
	if rt.Quote == nil || c.Route != rt.pattern || c.Method != r.Method || c.Path != cleanPath(r) {
		return nil, &x402.Error{Reason: ReasonQuoteMismatch, Message: "the quote is for " + c.Method + " " + c.Path}
	}
	expires := time.Unix(c.Expires, 0)
	if !p.cfg.Now().Before(expires) {
		return nil, &x402.Error{Reason: ReasonQuoteExpired, Message: "the quote expired at " + expires.UTC().Format(time.RFC3339)}
	}
	amount, err := evm.ParseAmount(c.Amount)
	if err != nil {
		return nil, invalid("bad quoted amount")
	}
	asset, err := evm.ParseAddress(c.Asset)
	if err != nil {
		return nil, invalid("bad quoted asset")
	}
	q := &sealedQuote{id: h, amount: amount, asset: asset, expires: expires, nonce: p.quoteNonce(&c)}
	if c.Task != "" {
		if b, err := hex.DecodeString(c.Task); err == nil && len(b) == len(q.task) {
			copy(q.task[:], b)
		}
	}
	return q, nil
}

func hexNonce(n [32]byte) string { return "0x" + hex.EncodeToString(n[:]) }

func (p *Paywall) serveQuote(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONReason(w, http.StatusMethodNotAllowed, ReasonQuoteInvalid, "ask for a quote with POST")
		return
	}
	var q QuoteRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxQuoteBody))
	if err := dec.Decode(&q); err != nil {
		writeJSONReason(w, http.StatusBadRequest, ReasonQuoteInvalid, "the body must be a JSON quote request")
		return
	}
	q.Method = strings.ToUpper(strings.TrimSpace(q.Method))
	u, err := url.Parse(q.Path)
	if q.Method == "" || err != nil || !strings.HasPrefix(u.Path, "/") || u.Host != "" {
		writeJSONReason(w, http.StatusBadRequest, ReasonQuoteInvalid, "method and an absolute path are required")
		return
	}
	if q.Payer != "" {
		if _, err := evm.ParseAddress(q.Payer); err != nil {
			writeJSONReason(w, http.StatusBadRequest, ReasonQuoteInvalid, "payer is not an address")
			return
		}
	}
	// The request the buyer will send, as the route will see it.
	target, err := http.NewRequestWithContext(r.Context(), q.Method, u.RequestURI(), nil)
	if err != nil {
		writeJSONReason(w, http.StatusBadRequest, ReasonQuoteInvalid, "method and an absolute path are required")
		return
	}
	target.Host, target.TLS = r.Host, r.TLS
	// A quote is not bound to a payer, so it is priced for anyone: pricing it for the claimed
	// payer would let a stranger pay a known buyer's price with it.
	path := cleanPath(target)
	rt := p.quotable(q.Method, path)
	if rt == nil {
		writeJSONReason(w, http.StatusNotFound, ReasonQuoteMismatch, "no route offering quotes at "+q.Method+" "+path)
		return
	}
	var charge *Charge
	if rt.Quote.Quoter != nil {
		var s string
		if s, err = rt.Quote.Quoter.Quote(r.Context(), q); err == nil {
			var pr priced
			if pr, err = p.parsePrice(s); err == nil && !pr.amount.IsZero() {
				charge = &Charge{Asset: pr.asset, Amount: pr.amount}
			}
		}
	} else {
		charge, err = p.price(target, rt, nil)
	}
	if err != nil {
		p.log.Error("quoting", "route", rt.pattern, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSONReason(w, http.StatusServiceUnavailable, ReasonPricingUnavailable, "no price could be quoted")
		return
	}
	ttl := rt.Quote.TTL
	if ttl <= 0 {
		ttl = DefaultQuoteTTL
	}
	expires := p.cfg.Now().Add(ttl)
	out := Quote{Method: q.Method, Path: path, Price: "0", Network: x402.EIP155(p.cfg.ChainID), PayTo: p.cfg.PayTo.Hex(), ExpiresAt: expires.Unix()}
	if charge == nil {
		// Free: nothing to pay, nothing to bind.
		writeJSON(w, http.StatusOK, out)
		return
	}
	id := make([]byte, 16)
	rand.Read(id)
	c := &quoteClaims{V: 1, ID: hex.EncodeToString(id), Route: rt.pattern, Method: q.Method, Path: path,
		Amount: charge.Amount.String(), Asset: charge.Asset.Address.Hex(), Expires: expires.Unix()}
	if q.Task != "" {
		sum := sha256.Sum256([]byte(q.Task))
		c.Task = hex.EncodeToString(sum[:])
	}
	if out.ID, err = p.seal(c); err != nil {
		writeJSONError(w, http.StatusInternalServerError, "cannot seal the quote")
		return
	}
	sealed := &sealedQuote{id: out.ID, amount: charge.Amount, asset: charge.Asset.Address, expires: time.Unix(c.Expires, 0), nonce: p.quoteNonce(c)}
	paid, err := p.price(target, rt, sealed)
	if err != nil || paid == nil {
		writeJSONReason(w, http.StatusServiceUnavailable, ReasonPricingUnavailable, "no price could be quoted")
		return
	}
	out.Price, out.Asset, out.Nonce = c.Amount, c.Asset, hexNonce(sealed.nonce)
	out.Accepts = []x402.PaymentRequirements{(&x402Rail{cfg: &p.cfg}).offered(paid)}
	writeJSON(w, http.StatusOK, out)
}

// quotable finds the route offering quotes for method and path.
func (p *Paywall) quotable(method, path string) *route {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, rt := range p.routes {
		if rt.Quote != nil && rt.matches(method, path) {
			return rt
		}
	}
	return nil
}

// writeJSON writes v as the JSON body of a status answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := x402.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
