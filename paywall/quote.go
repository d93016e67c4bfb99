package paywall

import (
	"context"
	"net/http"
	"time"

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
	// Payer is the address the buyer will pay from, if it wants a known buyer's price.
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
