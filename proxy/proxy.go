package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

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
	// Store keeps claims (each payment used once), payer records, spend windows and capability
	// uses; share it between instances behind one load balancer. *store.DB implements it.
	// Default: claims in memory, and no admin API, known buyers, spend limits or capability
	// tokens.
	Store Store
	// Balances reads payers' balances for access.min_balance.
	Balances paywall.BalanceChecker
	// Transport carries upstream requests. Default: http.DefaultTransport's settings, with 64
	// idle connections per upstream.
	Transport http.RoundTripper
	// LookupEnv resolves ${VAR} in the file on reload. Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives reloads, refusals and upstream failures. Default: none.
	Logger *slog.Logger
}

// Store is what the proxy keeps. *store.DB implements it.
type Store interface {
	store.Claims
	paywall.Records
	paywall.SpendLedger
	paywall.CapabilityUses
	// What the admin API shows and changes.
	Payers(ctx context.Context, limit int) ([]store.PayerRecord, error)
	Revenue(ctx context.Context) ([]store.RouteRevenue, error)
	Refusals(ctx context.Context, limit int) ([]store.Refusal, error)
	BlockPayer(ctx context.Context, payer common.Address, reason string) error
	UnblockPayer(ctx context.Context, payer common.Address) error
}

var _ Store = (*store.DB)(nil)

// Proxy is a paywall reverse proxy. It serves with one configuration at a time and swaps in a
// new one on Reload; requests already running finish on the configuration they started with.
// It is safe for concurrent use.
type Proxy struct {
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[instance]
}

// instance is one configuration, compiled.
type instance struct {
	cfg    *Config
	routes []*route
	// mux serves the paywall's own endpoints: discovery and quotes.
	mux *http.ServeMux
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
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Every request goes to a handful of upstreams: keep enough connections to each open
		// for concurrent traffic, instead of the default two.
		t.MaxIdleConnsPerHost = 64
		opts.Transport = t
	}
	p := &Proxy{opts: opts, log: opts.Logger}
	in, err := p.compile(cfg)
	if err != nil {
		return nil, err
	}
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
	pcfg := paywall.Config{
		Facilitator: fac,
		ChainID:     cfg.ChainID,
		PayTo:       cfg.PayTo,
		Assets:      cfg.Assets,
		MaxTimeout:  cfg.MaxTimeout,
		Secret:      cfg.Secret,
		Policy:      cfg.Policy,
		Balances:    p.opts.Balances,
		Now:         p.opts.Now,
		Logger:      p.log,
	}
	if st := p.opts.Store; st != nil {
		pcfg.Claims, pcfg.Records, pcfg.Spend, pcfg.Uses = st, st, st, st
	}
	pw, err := paywall.New(pcfg)
	if err != nil {
		return nil, err
	}
	in := &instance{cfg: cfg, mux: http.NewServeMux()}
	quotes := false
	for i := range cfg.Routes {
		rt := &cfg.Routes[i]
		target := rt.Upstream
		if target == nil {
			target = cfg.Upstream
		}
		var h http.Handler = p.reverseProxy(target, rt.Headers)
		if !rt.Free {
			charge, err := pw.Charge(paywallRoute(rt))
			if err != nil {
				return nil, ConfigErrors{{File: cfg.File, Line: rt.Line, Reason: fmt.Sprintf("routes[%d]: %s", i, strings.TrimPrefix(err.Error(), "paywall: "))}}
			}
			h = charge(h)
			quotes = quotes || rt.Quotes
		}
		in.routes = append(in.routes, &route{Route: rt, handler: h})
	}
	in.mux.Handle("GET "+paywall.DiscoveryPath, pw.Discovery())
	if quotes {
		in.mux.Handle("POST "+paywall.QuotePath, pw.QuoteHandler())
	}
	if cfg.Default == DefaultPass {
		in.fallback = p.reverseProxy(cfg.Upstream, nil)
	}
	if cfg.Admin != nil {
		if p.opts.Store == nil {
			return nil, ConfigErrors{{File: cfg.File, Reason: "admin: the admin API needs a store"}}
		}
		in.admin = p.adminHandler(cfg.Admin.Token)
	}
	return in, nil
}

// paywallRoute is what the paywall charges for rt.
func paywallRoute(rt *Route) paywall.Route {
	pr := paywall.Route{
		Path:         rt.Pattern(),
		Price:        rt.Price,
		KnownPrice:   rt.KnownPrice,
		Settle:       rt.Settle,
		Capability:   rt.Capability,
		Policy:       rt.Policy,
		Terms:        rt.Terms,
		InputSchema:  rt.InputSchema,
		OutputSchema: rt.OutputSchema,
		Description:  rt.Description,
		MimeType:     rt.MimeType,
	}
	if len(rt.Methods) == 1 {
		pr.Method = rt.Methods[0]
	}
	if rt.PricingHook != "" {
		pr.Pricer = paywall.PricingHook(rt.PricingHook, nil)
	}
	if rt.Quotes {
		pr.Quote = &paywall.QuotePolicy{TTL: rt.QuoteTTL}
	}
	return pr
}

// ServeHTTP serves r with the current configuration.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := p.cur.Load()
	if !canonical(r.URL.Path) {
		// "/free/../paid" would match the free route here and be served the paid one by an
		// upstream that cleans paths.
		writeError(w, http.StatusBadRequest, "path not in canonical form (no //, . or .. segments)")
		return
	}
	if in.admin != nil && in.cfg.Admin.Path != "" {
		if rest, ok := strings.CutPrefix(r.URL.Path, in.cfg.Admin.Path); ok && (rest == "" || rest[0] == '/') {
			http.StripPrefix(in.cfg.Admin.Path, in.admin).ServeHTTP(w, r)
			return
		}
	}
	if h, pattern := in.mux.Handler(r); pattern != "" {
		h.ServeHTTP(w, r)
		return
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

// canonical reports whether p is an absolute path without empty, "." or ".." segments (a
// trailing slash is allowed).
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	return c == p || c+"/" == p
}

// requestHost is r's Host, lower-cased and without its port.
func requestHost(r *http.Request) string {
	// "api.example.com." names the same host; without the dot it cannot miss its routes.
	return strings.TrimSuffix(hostOnly(strings.ToLower(r.Host)), ".")
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// strippedHeaders never reach the upstream: the buyer's payment is the proxy's business, and
// an upstream that logs requests must not collect signed authorizations or bearer tokens.
var strippedHeaders = []string{x402.HeaderPaymentSignature, x402.HeaderPaymentV1, paywall.HeaderCapability, paywall.HeaderQuote, paywall.HeaderPayer}

func (p *Proxy) reverseProxy(u *url.URL, headers []Header) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			for _, h := range strippedHeaders {
				pr.Out.Header.Del(h)
			}
			if scheme, _, _ := strings.Cut(pr.Out.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Quid") {
				pr.Out.Header.Del("Authorization") // a capability token
			}
			for _, h := range headers {
				pr.Out.Header.Set(h.Name, h.Value)
			}
		},
		Transport: p.opts.Transport,
		// Left at 0: ReverseProxy already flushes every write of a response that is an event
		// stream or has no Content-Length (chunked), so those stream; flushing each write of a
		// response of known length too would only add a syscall per write.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The transport's error quotes the whole URL, whose query is the buyer's business.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			p.log.Warn("upstream failed", "upstream", u.Host, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusBadGateway, "upstream unavailable")
		},
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := x402.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
