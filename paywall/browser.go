package paywall

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"

	"github.com/quidpay/quid/x402"
)

// What browsers need of a paid route: CORS, so that a web app on another origin can pay it with
// fetch, and a page instead of JSON when a person opens the route.

// corsAllowHeaders are the request headers x402 clients send. @x402/fetch also sends
// Access-Control-Expose-Headers as a request header, so a preflight asks for it.
var corsAllowHeaders = []string{
	x402.HeaderPaymentSignature, x402.HeaderPaymentV1, "Content-Type", "Access-Control-Expose-Headers",
	HeaderQuote, HeaderCapability, HeaderPayer,
}

// CORS wraps a handler, typically the mux paid routes are registered on, so that it answers
// CORS preflight requests (OPTIONS with Origin and Access-Control-Request-Method) allowing the
// x402 request headers. A mux with method patterns ("GET /weather") sends OPTIONS nowhere near
// the paywall; routes registered without a method get the same answer from the paywall itself.
// Every other request passes through.
func CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answerCORS(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// answerCORS adds the CORS headers a cross-origin request needs, and answers it when it is a
// preflight. It reports whether the request was answered.
//
// Any origin is allowed, without credentials: an x402 payment is carried in a header, not a
// cookie, so a page on another origin gains nothing by riding on the user's session.
func answerCORS(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Origin") == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	exposeHeaders(h)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Add("Vary", "Origin") // the header above is only sent to cross-origin requests
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", strings.Join(allowedHeaders(r.Header.Values("Access-Control-Request-Headers")), ", "))
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// allowedHeaders returns the x402 headers plus those the preflight asks for, which are the
// application's business (the paywall only adds its own).
func allowedHeaders(requested []string) []string {
	out := append([]string(nil), corsAllowHeaders...)
	for _, line := range requested {
		for _, name := range strings.Split(line, ",") {
			name = strings.TrimSpace(name)
			if !isToken(name) {
				continue
			}
			dup := false
			for _, have := range out {
				if strings.EqualFold(have, name) {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, name)
			}
		}
	}
	return out
}

func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// wantsHTML reports a person's browser rather than an agent, by the test the reference servers
// use: the request accepts text/html and comes from a Mozilla-compatible user agent. Agents
// (Accept: */* or application/json) keep getting JSON.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html") && strings.Contains(r.Header.Get("User-Agent"), "Mozilla")
}

// body402 sets the Content-Type of a 402 and returns its body: the x402 JSON for agents, a page
// saying what the resource costs for browsers. The PAYMENT-REQUIRED header is sent either way,
// so a wallet extension in the browser can still pay.
func (p *Paywall) body402(h http.Header, r *http.Request, charge *Charge, cause error, jsonBody []byte) []byte {
	if !wantsHTML(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		return jsonBody
	}
	var buf bytes.Buffer
	err := paywallPage.Execute(&buf, map[string]any{
		"Description": charge.Resource.Description,
		"URL":         charge.Resource.URL,
		"Price":       charge.Asset.Format(charge.Amount),
		"Network":     x402.EIP155(p.cfg.ChainID),
		"Asset":       charge.Asset.Address.Hex(),
		"PayTo":       p.cfg.PayTo.Hex(),
		"Refused":     cause != nil,
		"Reason":      reasonFor(cause),
	})
	if err != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
		return jsonBody
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	return buf.Bytes()
}

var paywallPage = template.Must(template.New("paywall").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Payment required</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}
dt{font-weight:600}dd{margin:0 0 .75rem;font-family:ui-monospace,monospace;word-break:break-all}
.note{color:#666;font-size:.9rem}.refused{color:#a00}
</style>
</head>
<body>
<h1>Payment required</h1>
<p>{{if .Description}}{{.Description}}: {{end}}<strong>{{.Price}}</strong> per request.</p>
{{if .Refused}}<p class="refused">The payment sent was not accepted: {{.Reason}}.</p>{{end}}
<dl>
<dt>Resource</dt><dd>{{.URL}}</dd>
<dt>Network</dt><dd>{{.Network}}</dd>
<dt>Token</dt><dd>{{.Asset}}</dd>
<dt>Pay to</dt><dd>{{.PayTo}}</dd>
</dl>
<p class="note">This resource is sold over HTTP 402 with the x402 protocol. Pay it with an x402
client or agent wallet; the terms are in this response's <code>PAYMENT-REQUIRED</code> header.</p>
</body>
</html>
`))
