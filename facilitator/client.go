package facilitator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/quidpay/quid/x402"
)

// Client calls a remote facilitator's HTTP API. It has the same Verify, Settle and Supported
// methods as Facilitator, so a paywall can use either.
type Client struct {
	// URL is the facilitator's base URL, e.g. "http://127.0.0.1:4021".
	URL string
	// HTTP is the client requests go through. Default: one with a 90 s timeout, the settle wait
	// of the reference clients.
	HTTP *http.Client
}

// NewClient returns a Client for the facilitator at url.
func NewClient(url string) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), HTTP: &http.Client{Timeout: 90 * time.Second}}
}

// Verify implements the paywall's facilitator contract over HTTP.
func (c *Client) Verify(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	var resp x402.VerifyResponse
	if err := c.post(ctx, "/verify", p, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Settle implements the paywall's facilitator contract over HTTP. A timeout is reported as an
// error wrapping ErrUnavailable: the outcome is then unknown, not failed.
func (c *Client) Settle(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.SettleResponse, error) {
	var resp x402.SettleResponse
	if err := c.post(ctx, "/settle", p, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Supported fetches GET /supported.
func (c *Client) Supported(ctx context.Context) (*x402.SupportedResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/supported", nil)
	if err != nil {
		return nil, err
	}
	var s x402.SupportedResponse
	if err := c.do(req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *Client) post(ctx context.Context, path string, p *x402.PaymentPayload, r x402.PaymentRequirements, out any) error {
	body, err := x402.EncodeFacilitatorRequest(p, r)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// do sends req and decodes a 2xx or 400 answer (both carry a verdict) into out; anything else is
// ErrUnavailable.
func (c *Client) do(req *http.Request, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrUnavailable, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusBadRequest {
		return fmt.Errorf("%w: %s answered %s", ErrUnavailable, req.URL.Path, resp.Status)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %s answered malformed JSON", ErrUnavailable, req.URL.Path)
	}
	return nil
}
