package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Options are what a Proxy takes from its command rather than from the file.
type Options struct {
	// Facilitator replaces the file's facilitator URL: an in-process facilitator (quid proxy
	// --dev, tests).
	Facilitator paywall.Facilitator
	// Claims makes payments single-use; share it between instances behind one load balancer.
	// Default: in memory.
	Claims store.Claims
	// Transport carries upstream requests. Default: http.DefaultTransport.
	Transport http.RoundTripper
	// LookupEnv resolves ${VAR} in the file on reload. Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives reloads, refusals and upstream failures. Default: none.
	Logger *slog.Logger
}

// Proxy is a paywall reverse proxy. It serves with one configuration at a time and swaps in a
// new one on Reload; requests already running finish on the configuration they started with.
// It is safe for concurrent use.
type Proxy struct {
	opts  Options
	log   *slog.Logger
	cur   atomic.Pointer[instance]
	stats *recorder
	block *blocklist
}

// instance is one configuration, compiled.
type instance struct {
	cfg    *Config
	routes []*route
	// fallback serves unmatched requests under default: pass; nil under deny.
	fallback http.Handler
	admin    http.Handler
}

type route struct {
	*Route
	handler http.Handler
}

// New compiles cfg into a Proxy.
func New(cfg *Config, opts Options) (*Proxy, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	p := &Proxy{opts: opts, log: opts.Logger, stats: newRecorder(opts.Now), block: newBlocklist()}
	in, err := p.compile(cfg)
	if err != nil {
		return nil, err
	}
	p.block.setConfigured(cfg.Access.BlockPayers)
	p.cur.Store(in)
	return p, nil
}

// Config returns the configuration being served.
func (p *Proxy) Config() *Config { return p.cur.Load().cfg }

// Reload reads the file the current configuration came from and, if it is valid, serves with
// it from now on. A file with errors changes nothing: the error (ConfigErrors, with lines) is
// returned and logged, and the running configuration keeps serving.
func (p *Proxy) Reload() error {
	old := p.cur.Load().cfg
	err := p.reload(old)
	if err != nil {
		p.log.Error("configuration not reloaded; the running one keeps serving", "file", old.File, "err", err.Error())
		return err
	}
	p.log.Info("configuration reloaded", "file", old.File, "routes", len(p.Config().Routes))
	return nil
}

func (p *Proxy) reload(old *Config) error {
	data, err := os.ReadFile(old.File)
	if err != nil {
		return err
	}
	lookup := p.opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cfg, err := Parse(old.File, data, lookup)
	if err != nil {
		return err
	}
	// What a listener or the store is bound to cannot change under running requests.
	var errs ConfigErrors
	if cfg.Listen != old.Listen {
		errs = append(errs, &ConfigError{File: cfg.File, Reason: "listen: changing the address needs a restart"})
	}
	if cfg.Store != old.Store {
		errs = append(errs, &ConfigError{File: cfg.File, Reason: "store: changing the store needs a restart"})
	}
	if adminListen(cfg) != adminListen(old) {
		errs = append(errs, &ConfigError{File: cfg.File, Reason: "admin.listen: changing the address needs a restart"})
	}
	if len(errs) > 0 {
		return errs
	}
	in, err := p.compile(cfg)
	if err != nil {
		return err
	}
	p.block.setConfigured(cfg.Access.BlockPayers)
	p.cur.Store(in)
	return nil
}

func adminListen(c *Config) string {
	if c.Admin == nil {
		return ""
	}
	return c.Admin.Listen
}

func (p *Proxy) compile(cfg *Config) (*instance, error) {
	fac := p.opts.Facilitator
	if fac == nil {
		if cfg.Facilitator == "" {
			return nil, ConfigErrors{{File: cfg.File, Reason: "facilitator: required, the URL of a quid facilitator"}}
		}
		fac = facilitator.NewClient(cfg.Facilitator)
	}
	pw, err := paywall.New(paywall.Config{
		Facilitator: fac,
		ChainID:     cfg.ChainID,
		PayTo:       cfg.PayTo,
		Assets:      cfg.Assets,
		Claims:      p.opts.Claims,
		MaxTimeout:  cfg.MaxTimeout,
		Now:         p.opts.Now,
		Logger:      p.log,
	})
	if err != nil {
		return nil, err
	}
	in := &instance{cfg: cfg}
	for i := range cfg.Routes {
		rt := &cfg.Routes[i]
		target := rt.Upstream
		if target == nil {
			target = cfg.Upstream
		}
		var h http.Handler = p.reverseProxy(target, rt.Headers)
		if !rt.Free {
			charge, err := pw.Charge(paywall.Route{Price: rt.Price, Description: rt.Description, MimeType: rt.MimeType, Settle: rt.Settle})
			if err != nil {
				return nil, ConfigErrors{{File: cfg.File, Line: rt.Line, Reason: fmt.Sprintf("route %s: %v", rt.Name, err)}}
			}
			h = p.guard(cfg, rt, charge(h))
		}
		in.routes = append(in.routes, &route{Route: rt, handler: h})
	}
	if cfg.Default == DefaultPass {
		in.fallback = p.reverseProxy(cfg.Upstream, nil)
	}
	if cfg.Admin != nil {
		in.admin = p.adminHandler(cfg.Admin.Token)
	}
	return in, nil
}

// ServeHTTP serves r with the current configuration.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := p.cur.Load()
	if in.admin != nil && in.cfg.Admin.Path != "" {
		if rest, ok := strings.CutPrefix(r.URL.Path, in.cfg.Admin.Path); ok && (rest == "" || rest[0] == '/') {
			http.StripPrefix(in.cfg.Admin.Path, in.admin).ServeHTTP(w, r)
			return
		}
	}
	rt := in.match(r)
	switch {
	case rt != nil:
		rt.handler.ServeHTTP(w, r)
	case in.fallback != nil:
		in.fallback.ServeHTTP(w, r)
	default:
		writeError(w, http.StatusNotFound, "no route")
	}
}

// Admin returns the admin API, served on its own address when the file says admin.listen. It
// follows reloads.
func (p *Proxy) Admin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := p.cur.Load()
		if in.admin == nil {
			writeError(w, http.StatusNotFound, "admin API not configured")
			return
		}
		in.admin.ServeHTTP(w, r)
	})
}

// match returns the first route matching r, in file order.
func (in *instance) match(r *http.Request) *route {
	host := requestHost(r)
	for _, rt := range in.routes {
		if rt.matches(host, r.Method, r.URL.Path) {
			return rt
		}
	}
	return nil
}

func (rt *Route) matches(host, method, path string) bool {
	if rt.Prefix {
		base := rt.Path[:len(rt.Path)-1]
		if path != base && !strings.HasPrefix(path, rt.Path) {
			return false
		}
	} else if path != rt.Path {
		return false
	}
	if len(rt.Methods) > 0 {
		ok := false
		for _, m := range rt.Methods {
			if m == method || (m == http.MethodGet && method == http.MethodHead) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	switch {
	case rt.Host == "":
		return true
	case strings.HasPrefix(rt.Host, "*."):
		return strings.HasSuffix(host, rt.Host[1:]) && len(host) > len(rt.Host)-1
	}
	return host == rt.Host
}

// requestHost is r's Host, lower-cased and without its port.
func requestHost(r *http.Request) string {
	return hostOnly(strings.ToLower(r.Host))
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// strippedHeaders never reach the upstream: the buyer's payment is the proxy's business, and
// an upstream that logs requests must not collect signed authorizations.
var strippedHeaders = []string{x402.HeaderPaymentSignature, x402.HeaderPaymentV1}

func (p *Proxy) reverseProxy(u *url.URL, headers []Header) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			for _, h := range strippedHeaders {
				pr.Out.Header.Del(h)
			}
			for _, h := range headers {
				pr.Out.Header.Set(h.Name, h.Value)
			}
		},
		Transport: p.opts.Transport,
		// Write each chunk as it arrives, so server-sent events and chunked responses stream.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Warn("upstream failed", "host", u.Host, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusBadGateway, "upstream unavailable")
		},
	}
}

// guard applies the payer policy in front of a paid route, and records what the paywall
// decided.
func (p *Proxy) guard(cfg *Config, rt *Route, paid http.Handler) http.Handler {
	allow := map[common.Address]bool{}
	for _, a := range cfg.Access.AllowPayers {
		allow[a] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payer, hasPayer := payerOf(r)
		if hasPayer && (p.block.has(payer) || len(allow) > 0 && !allow[payer]) {
			p.stats.refused(rt.Name, payer, http.StatusForbidden, reasonBlocked)
			p.log.Info("payer refused by access policy", "route", rt.Name, "payer", payer.Hex())
			writeError(w, http.StatusForbidden, reasonBlocked)
			return
		}
		rec := &recordingWriter{ResponseWriter: w}
		paid.ServeHTTP(rec, r)
		p.record(rt, r, rec, payer, hasPayer)
	})
}

// reasonBlocked is the answer to a payer the access policy refuses.
const reasonBlocked = "payer not accepted"

func (p *Proxy) record(rt *Route, r *http.Request, rec *recordingWriter, payer common.Address, hasPayer bool) {
	h := rec.Header()
	switch {
	case rec.status == http.StatusPaymentRequired:
		reason := string(x402.ReasonPaymentRequired)
		if pr, err := x402.DecodePaymentRequired(h.Get(x402.HeaderPaymentRequired)); err == nil && pr.Error != "" {
			reason = pr.Error
		}
		if st, ok := settlement(h); ok && st.ErrorReason != "" {
			reason = string(st.ErrorReason)
		}
		if hasPayer {
			p.stats.refused(rt.Name, payer, rec.status, reason)
		}
	case rec.status < 400:
		st, ok := settlement(h)
		if !ok || !st.Success {
			return
		}
		who, err := evm.ParseAddress(st.Payer)
		if err != nil {
			who = payer
		}
		p.stats.paid(rt.Name, who, rt.Asset, rt.Amount, st.Transaction)
	case hasPayer && rec.status >= 500:
		p.stats.refused(rt.Name, payer, rec.status, http.StatusText(rec.status))
	}
}

func settlement(h http.Header) (*x402.SettleResponse, bool) {
	v := h.Get(x402.HeaderPaymentResponse)
	if v == "" {
		v = h.Get(x402.HeaderPaymentV1Response)
	}
	if v == "" {
		return nil, false
	}
	s, err := x402.DecodeSettleResponse(v)
	return s, err == nil
}

// payerOf reads the payer an x402 payment names, without verifying it: enough to refuse a
// blocked payer before anything is asked of the facilitator. A forged "from" only gets its
// sender refused; the paywall verifies the signature of everything it lets through.
func payerOf(r *http.Request) (common.Address, bool) {
	var pay *x402.PaymentPayload
	var err error
	if h := r.Header.Get(x402.HeaderPaymentSignature); h != "" {
		pay, err = x402.DecodePaymentSignature(h)
	} else if h := r.Header.Get(x402.HeaderPaymentV1); h != "" {
		pay, err = x402.DecodeXPayment(h)
	} else {
		return common.Address{}, false
	}
	if err != nil {
		return common.Address{}, false
	}
	ex, err := pay.ExactEVM()
	if err != nil {
		return common.Address{}, false
	}
	from, err := evm.ParseAddress(ex.Authorization.From)
	if err != nil {
		return common.Address{}, false
	}
	return from, true
}

// recordingWriter notes the status and headers a handler answered with, and passes everything
// through, flushes included.
type recordingWriter struct {
	http.ResponseWriter
	status int
}

func (w *recordingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := x402.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
