package paywall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/x402"
)

// HeaderPayer is a request header in which an unpaid request may name the address it will pay
// from, to be quoted that payer's price (see Buyer). It is only a hint: the paid retry is priced
// for the payment's actual payer.
const HeaderPayer = "Quid-Payer"

// Buyer is who a request is from, as far as the paywall can tell when it prices the request.
//
// The address is, in order: the payer of the payment the request carries, the payer named by a
// valid capability token, or the address named in the Quid-Payer header. A claimed address gains
// nothing unpaid: a payment from another address is priced for that other address, so a buyer
// that claims to be a known payer is charged the known price only when it pays from that address.
type Buyer struct {
	// Address is zero when the request says nothing about who it is from.
	Address common.Address
	// Known reports a buyer that has paid this seller before (Config.Records says so) or that
	// holds a valid capability token of this seller.
	Known bool
}

// A Pricer decides a request's price when it arrives: "$0.01" or "<atomic units> <asset
// address>", as Route.Price; a zero price serves the request free.
//
// The paid retry of a request is priced again and must get the same price, or its payment no
// longer matches: derive the price from the request (method, URL, headers, body size) and the
// buyer only, never from a clock or a counter. A Pricer must not read the request body, which
// belongs to the handler. An error refuses the request with 503; nothing is served free.
type Pricer interface {
	Price(r *http.Request, buyer Buyer) (string, error)
}

// PricerFunc adapts a function to a Pricer.
type PricerFunc func(r *http.Request, buyer Buyer) (string, error)

// Price implements Pricer.
func (f PricerFunc) Price(r *http.Request, buyer Buyer) (string, error) { return f(r, buyer) }

// ErrPricing reports that a request's price could not be decided (a pricing hook failed or gave
// an invalid price). The request is refused with 503, never served free.
var ErrPricing = errors.New("paywall: price unavailable")

// PricingHookRequest is what PricingHook POSTs to the seller's pricing service.
type PricingHookRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
	// Headers are the request's headers without credentials: Authorization, Cookie and the
	// payment, quote and capability headers are left out.
	Headers map[string][]string `json:"headers"`
	// BodySize is the declared Content-Length; -1 when unknown.
	BodySize int64 `json:"bodySize"`
	// Payer is the buyer's address, when known ("" otherwise); Known as in Buyer.
	Payer string `json:"payer,omitempty"`
	Known bool   `json:"known"`
}

// PricingHookResponse is what the pricing service answers.
type PricingHookResponse struct {
	Price string `json:"price"`
}

// maxHookResponse bounds a pricing service's answer.
const maxHookResponse = 64 << 10

// PricingHook returns a Pricer asking an HTTP service for each request's price: it POSTs a
// PricingHookRequest as JSON to url and reads a PricingHookResponse. A nil client is one with a
// five-second timeout. Any failure (transport, status other than 200, bad JSON, empty price) is
// ErrPricing, which refuses the request with 503. The service must answer the same request the
// same way (see Pricer).
func PricingHook(url string, client *http.Client) Pricer {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return &pricingHook{url: url, client: client}
}

type pricingHook struct {
	url    string
	client *http.Client
}

var _ Pricer = (*pricingHook)(nil)

// credentialHeaders are never sent to a pricing service.
var credentialHeaders = map[string]bool{
	"Authorization":             true,
	"Proxy-Authorization":       true,
	"Cookie":                    true,
	"Set-Cookie":                true,
	x402.HeaderPaymentSignature: true,
	x402.HeaderPaymentV1:        true,
	HeaderQuote:                 true,
	HeaderCapability:            true,
	"Sign-In-With-X":            true,
}

func (h *pricingHook) Price(r *http.Request, buyer Buyer) (string, error) {
	req := PricingHookRequest{
		Method:   r.Method,
		Path:     r.URL.Path,
		Query:    r.URL.RawQuery,
		Headers:  map[string][]string{},
		BodySize: r.ContentLength,
		Known:    buyer.Known,
	}
	if buyer.Address != (common.Address{}) {
		req.Payer = buyer.Address.Hex()
	}
	for k, vs := range r.Header {
		if !credentialHeaders[http.CanonicalHeaderKey(k)] {
			req.Headers[k] = vs
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPricing, err)
	}
	hr, err := http.NewRequestWithContext(r.Context(), http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPricing, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(hr)
	if err != nil {
		return "", fmt.Errorf("%w: pricing hook: %v", ErrPricing, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: pricing hook answered %d", ErrPricing, resp.StatusCode)
	}
	var out PricingHookResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHookResponse)).Decode(&out); err != nil {
		return "", fmt.Errorf("%w: pricing hook answer: %v", ErrPricing, err)
	}
	if strings.TrimSpace(out.Price) == "" {
		return "", fmt.Errorf("%w: pricing hook gave no price", ErrPricing)
	}
	return out.Price, nil
}
