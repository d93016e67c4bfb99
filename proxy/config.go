package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"gopkg.in/yaml.v3"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/x402"
)

// Config is a validated proxy configuration. Build it with Load or Parse: they check every key
// and report problems with the file's line numbers.
type Config struct {
	// File is the name the configuration was read from, for messages.
	File string
	// Listen is the address the proxy serves on.
	Listen string
	// Upstream is where routes without their own upstream (and unmatched requests, under
	// Default Pass) are sent.
	Upstream *url.URL
	// Facilitator is the base URL of the facilitator that verifies and settles payments; empty
	// when the command supplies one (quid proxy --dev).
	Facilitator string
	// RPC is a JSON-RPC endpoint of the chain, read for access.min_balance only.
	RPC string
	// ChainID is the EVM chain payments are made on.
	ChainID uint64
	// PayTo receives the payments.
	PayTo common.Address
	// Store is the DSN of the store holding claims (a SQLite file path or postgres://…); empty
	// means the command's default.
	Store string
	// MaxTimeout is how long a buyer's authorization may stay valid.
	MaxTimeout time.Duration
	// Default says what happens to a request no route matches.
	Default Default
	// Assets are the tokens prices may be given in.
	Assets *evm.Registry
	// Routes are tried in file order; the first match wins.
	Routes []Route
	// Policy is the payer policy of paid routes without their own.
	Policy *paywall.Policy
	// Secret seals quotes and derives capability tokens' keys; from the environment. Required
	// when a route offers quotes or capability tokens.
	Secret []byte
	// Admin configures the admin API; nil when the file has no admin section.
	Admin *Admin
}

// Default is the treatment of requests no route matches.
type Default int

const (
	// DefaultDeny answers 404: only what the file lists is reachable.
	DefaultDeny Default = iota
	// DefaultPass forwards unmatched requests to the default upstream, free.
	DefaultPass
)

func (d Default) String() string {
	if d == DefaultPass {
		return "pass"
	}
	return "deny"
}

// Route is one entry of routes:.
type Route struct {
	// Name identifies the route in logs and the admin API; default "METHOD host path".
	Name string
	// Line is where the route starts in the file.
	Line int
	// Host is "" (any), an exact host, or "*.example.com" (any subdomain, not the apex).
	Host string
	// Methods are the accepted methods; empty accepts any.
	Methods []string
	// Path is an exact path, or a prefix when Prefix is set (written "/api/*", stored "/api/").
	Path   string
	Prefix bool
	// Free routes are forwarded without payment.
	Free bool
	// Price is the route's price as written ("$0.01" or "<atomic> <asset>"), with the asset and
	// amount it resolves to; for unknown buyers when KnownPrice is set. Empty when PricingHook
	// alone prices the route.
	Price  string
	Asset  evm.Asset
	Amount evm.Amount
	// KnownPrice is the price for buyers who paid before or hold a capability token.
	KnownPrice string
	// PricingHook is the URL of a service pricing each request.
	PricingHook string
	// Settle is when the payment is settled.
	Settle paywall.SettleMode
	// Quotes lets buyers ask for a price bound to one request, valid QuoteTTL.
	Quotes   bool
	QuoteTTL time.Duration
	// Capability, when set, issues a capability token after each settled payment.
	Capability *paywall.CapabilityPolicy
	// Policy overrides the file's access policy for this route.
	Policy *paywall.Policy
	// Terms are disclosed to buyers before payment.
	Terms *paywall.Terms
	// InputSchema and OutputSchema are JSON Schemas, for discovery.
	InputSchema  json.RawMessage
	OutputSchema json.RawMessage
	// Upstream overrides the default upstream.
	Upstream *url.URL
	// Headers are added to the upstream request. Values may hold secrets from the environment
	// and are never logged or shown.
	Headers []Header
	// Description and MimeType describe the resource to buyers before they pay.
	Description string
	MimeType    string
}

// Pattern is the route's path as written: "/exact" or "/prefix/*".
func (rt *Route) Pattern() string {
	if rt.Prefix {
		return rt.Path + "*"
	}
	return rt.Path
}

// Header is a header set on upstream requests.
type Header struct {
	Name  string
	Value string
}

// Admin configures the admin API.
type Admin struct {
	// Listen is a separate address for the admin API; Path mounts it on the proxy's own
	// listener instead. At least one is set.
	Listen string
	Path   string
	// Token is the bearer token the admin API requires. It comes from the environment.
	Token string
}

// ConfigError is one problem in a configuration file.
type ConfigError struct {
	File   string
	Line   int // 0 when the problem has no line (a missing key)
	Reason string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Reason
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Reason
}

// ConfigErrors are all the problems found in one file, in line order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates the configuration at path, taking secrets from the process
// environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

// file is quid.yaml as written. Keys are documented in the example configuration.
type file struct {
	Listen      string        `yaml:"listen"`
	Upstream    string        `yaml:"upstream"`
	Facilitator string        `yaml:"facilitator"`
	RPC         string        `yaml:"rpc"`
	ChainID     uint64        `yaml:"chain_id"`
	PayTo       string        `yaml:"pay_to"`
	Store       string        `yaml:"store"`
	MaxTimeout  time.Duration `yaml:"max_timeout"`
	Default     string        `yaml:"default"`
	Assets      []fileAsset   `yaml:"assets"`
	Secret      string        `yaml:"secret"`
	Routes      []fileRoute   `yaml:"routes"`
	Access      *fileAccess   `yaml:"access"`
	Admin       *fileAdmin    `yaml:"admin"`
}

type fileAsset struct {
	Address  string `yaml:"address"`
	Symbol   string `yaml:"symbol"`
	Decimals *uint8 `yaml:"decimals"`
	Name     string `yaml:"name"`
	Version  string `yaml:"version"`
	USD      bool   `yaml:"usd"`
}

type fileRoute struct {
	Name         string            `yaml:"name"`
	Host         string            `yaml:"host"`
	Method       string            `yaml:"method"`
	Methods      []string          `yaml:"methods"`
	Path         string            `yaml:"path"`
	Price        string            `yaml:"price"`
	KnownPrice   string            `yaml:"known_price"`
	PricingHook  string            `yaml:"pricing_hook"`
	Free         bool              `yaml:"free"`
	Settle       string            `yaml:"settle"`
	Upstream     string            `yaml:"upstream"`
	Headers      map[string]string `yaml:"headers"`
	Description  string            `yaml:"description"`
	MimeType     string            `yaml:"mime_type"`
	Quotes       bool              `yaml:"quotes"`
	QuoteTTL     time.Duration     `yaml:"quote_ttl"`
	Capability   *fileCapability   `yaml:"capability"`
	Access       *fileAccess       `yaml:"access"`
	Terms        *fileTerms        `yaml:"terms"`
	InputSchema  yaml.Node         `yaml:"input_schema"`
	OutputSchema yaml.Node         `yaml:"output_schema"`
}

type fileCapability struct {
	TTL   time.Duration `yaml:"ttl"`
	Uses  uint64        `yaml:"uses"`
	Scope []string      `yaml:"scope"`
}

type fileTerms struct {
	Expiry  string `yaml:"expiry"`
	Limits  string `yaml:"limits"`
	Resale  string `yaml:"resale"`
	DataUse string `yaml:"data_use"`
}

type fileAccess struct {
	BlockPayers []string   `yaml:"block_payers"`
	AllowPayers []string   `yaml:"allow_payers"`
	Rate        string     `yaml:"rate"`
	Spend       *fileSpend `yaml:"spend"`
	MinBalance  string     `yaml:"min_balance"`
}

type fileSpend struct {
	Max    string        `yaml:"max"`
	Window time.Duration `yaml:"window"`
}

type fileAdmin struct {
	Listen string `yaml:"listen"`
	Path   string `yaml:"path"`
	Token  string `yaml:"token"`
}

// maxConfigBytes bounds a configuration file; anything larger is a mistake.
const maxConfigBytes = 1 << 20

// Parse validates a configuration. name is used in messages; lookupEnv resolves ${VAR}
// references. Every problem found is reported, each with its line, as ConfigErrors.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	p := &parser{name: name, env: lookupEnv}
	if len(data) > maxConfigBytes {
		p.errf(0, "larger than %d bytes", maxConfigBytes)
		return nil, p.errs
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p.yamlErr(err)
		return nil, p.errs
	}
	if len(root.Content) == 0 {
		p.errf(0, "empty configuration")
		return nil, p.errs
	}
	p.root = root.Content[0]
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		p.yamlErr(err)
		// After unknown keys or mistyped values the rest was decoded: check it too, so that one
		// run shows every error.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, p.errs
		}
	}
	cfg := p.build(&f)
	if len(p.errs) > 0 {
		sortErrs(p.errs)
		return nil, p.errs
	}
	return cfg, nil
}

type parser struct {
	reg  *evm.Registry
	name string
	env  func(string) (string, bool)
	root *yaml.Node
	errs ConfigErrors
}

func (p *parser) errf(line int, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{File: p.name, Line: line, Reason: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErr turns yaml.v3's messages ("line 3: field foo not found in type proxy.file") into
// ConfigErrors.
func (p *parser) yamlErr(err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		line := 0
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			line, _ = strconv.Atoi(g[1])
			m = g[2]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		if k, ok := strings.CutPrefix(m, "field "); ok {
			if k, _, ok := strings.Cut(k, " not found"); ok {
				m = fmt.Sprintf("unknown key %q", k)
			}
		}
		p.errf(line, "%s", m)
	}
}

func sortErrs(es ConfigErrors) {
	slices.SortStableFunc(es, func(a, b *ConfigError) int { return a.Line - b.Line })
}

// line finds the line of the value at a path of keys (string) and sequence indexes (int), or
// of the nearest ancestor that exists.
func (p *parser) line(path ...any) int {
	n := p.root
	best := n.Line
	for _, step := range path {
		var next *yaml.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
			}
		}
		if next == nil {
			return best
		}
		n, best = next, next.Line
	}
	return best
}

// keysInOrder returns m's keys in the order the file has them at path, so that problems are
// reported the same way on every run.
func (p *parser) keysInOrder(m map[string]string, path ...any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return p.keyLine(a, path...) - p.keyLine(b, path...) })
	return keys
}

// keyLine is the line of a mapping key itself (for headers, whose names are keys).
func (p *parser) keyLine(key string, path ...any) int {
	n := p.root
	for _, step := range path {
		found := false
		switch s := step.(type) {
		case string:
			for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s {
					n, found = n.Content[i+1], true
					break
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				n, found = n.Content[s], true
			}
		}
		if !found {
			return p.line(path...)
		}
	}
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// DefaultListen is the proxy's address when the file names none.
const DefaultListen = "127.0.0.1:8402"

func (p *parser) build(f *file) *Config {
	cfg := &Config{File: p.name, Listen: f.Listen, Facilitator: f.Facilitator, ChainID: f.ChainID, Store: f.Store, MaxTimeout: f.MaxTimeout}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	} else if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		p.errf(p.line("listen"), "listen: %q is not host:port", f.Listen)
	}
	if f.Upstream != "" {
		cfg.Upstream = p.url(f.Upstream, "upstream")
	}
	if f.Facilitator != "" {
		p.url(f.Facilitator, "facilitator")
	}
	if f.RPC != "" && p.url(f.RPC, "rpc") != nil {
		cfg.RPC = f.RPC
	}
	if f.ChainID == 0 {
		p.errf(p.line("chain_id"), "chain_id: required, the EVM chain id payments are made on (8453 for Base)")
	}
	if f.PayTo == "" {
		p.errf(p.line("pay_to"), "pay_to: required, the address receiving payments")
	} else if a, err := evm.ParseAddress(f.PayTo); err != nil || a == (common.Address{}) {
		p.errf(p.line("pay_to"), "pay_to: %q is not a non-zero 0x address", f.PayTo)
	} else {
		cfg.PayTo = a
	}
	switch {
	case f.MaxTimeout == 0:
		cfg.MaxTimeout = 60 * time.Second
	case f.MaxTimeout < 10*time.Second || f.MaxTimeout > time.Hour:
		p.errf(p.line("max_timeout"), "max_timeout: %s is outside 10s..1h", f.MaxTimeout)
	}
	switch f.Default {
	case "", "deny":
		cfg.Default = DefaultDeny
	case "pass":
		cfg.Default = DefaultPass
		if cfg.Upstream == nil {
			p.errf(p.line("default"), "default: pass needs the top-level upstream to pass to")
		}
	default:
		p.errf(p.line("default"), "default: %q is neither deny nor pass", f.Default)
	}
	cfg.Assets = p.assetsOf(f)
	cfg.Routes = p.routes(f, cfg)
	cfg.Policy = p.policy(f.Access, f.ChainID, cfg.Assets, "access")
	if f.Secret != "" {
		if !envRef.MatchString(f.Secret) {
			p.errf(p.line("secret"), "secret: must come from the environment, e.g. ${QUID_SECRET}")
		} else if v, err := expandEnv(f.Secret, p.env); err != nil {
			p.errf(p.line("secret"), "secret: %v", err)
		} else if len(v) < minSecretBytes {
			p.errf(p.line("secret"), "secret: shorter than %d bytes", minSecretBytes)
		} else {
			cfg.Secret = []byte(v)
		}
	}
	if f.Admin != nil {
		cfg.Admin = p.admin(f.Admin)
		if cfg.Admin.Listen != "" && cfg.Admin.Listen == cfg.Listen && !strings.HasSuffix(cfg.Listen, ":0") {
			p.errf(p.line("admin", "listen"), "admin.listen: the proxy's own address; use admin.path to share it")
		}
	}
	return cfg
}

func (p *parser) url(s string, path ...any) *url.URL {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		p.errf(p.line(path...), "%s: %q is not an http(s) URL without query", keyName(path), s)
		return nil
	}
	if u.User != nil {
		// A password in the file would be logged with the URL; credentials go in headers.
		p.errf(p.line(path...), "%s: credentials in a URL; set them in headers from the environment", keyName(path))
		return nil
	}
	return u
}

func keyName(path []any) string {
	var b strings.Builder
	for _, s := range path {
		switch s := s.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		}
	}
	return b.String()
}

func (p *parser) assets(f *file) *evm.Registry {
	reg := evm.DefaultRegistry()
	if f.ChainID != 0 {
		// The devnet's test stablecoin is known on every chain id, as quid dev deploys it.
		reg = reg.With(evm.DevToken(f.ChainID))
	}
	for i, a := range f.Assets {
		addr, err := evm.ParseAddress(a.Address)
		if err != nil || addr == (common.Address{}) {
			p.errf(p.line("assets", i, "address"), "assets[%d].address: %q is not a 0x address", i, a.Address)
			continue
		}
		if a.Decimals == nil || *a.Decimals > 36 {
			p.errf(p.line("assets", i, "decimals"), "assets[%d].decimals: required, 0..36 (the token's own decimals)", i)
			continue
		}
		if a.Name == "" || a.Version == "" || a.Symbol == "" {
			p.errf(p.line("assets", i), "assets[%d]: symbol, name and version (the token's EIP-712 domain) are required", i)
			continue
		}
		reg = reg.With(evm.Asset{ChainID: f.ChainID, Address: addr, Symbol: a.Symbol, Decimals: *a.Decimals, Name: a.Name, Version: a.Version, USD: a.USD})
	}
	return reg
}

var (
	methodToken = regexp.MustCompile(`^[A-Z]+$`)
	hostPattern = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	headerName  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// reservedHeaders may not be set on upstream requests from the file: hop-by-hop headers, and
// the payment headers, which never reach the upstream.
var reservedHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true,
	http.CanonicalHeaderKey(x402.HeaderPaymentSignature): true, http.CanonicalHeaderKey(x402.HeaderPaymentV1): true,
}

func (p *parser) routes(f *file, cfg *Config) []Route {
	if len(f.Routes) == 0 {
		p.errf(p.line("routes"), "routes: at least one route is required")
	}
	seen := map[string]int{}
	var out []Route
	for i, fr := range f.Routes {
		at := func(key string) int { return p.line("routes", i, key) }
		r := Route{Name: fr.Name, Line: p.line("routes", i), Description: fr.Description, MimeType: fr.MimeType}
		ok := true
		bad := func(line int, format string, args ...any) {
			p.errf(line, "routes[%d]: "+format, append([]any{i}, args...)...)
			ok = false
		}
		r.Host = strings.ToLower(fr.Host)
		if r.Host != "" && !hostPattern.MatchString(r.Host) {
			bad(at("host"), "host %q is neither a host name nor *.domain", fr.Host)
		}
		methods := fr.Methods
		if fr.Method != "" {
			if len(methods) > 0 {
				bad(at("method"), "method and methods are exclusive")
			}
			methods = []string{fr.Method}
		}
		for _, m := range methods {
			if !methodToken.MatchString(m) {
				bad(at("methods"), "method %q is not an upper-case HTTP method", m)
			}
		}
		r.Methods = methods
		switch path := fr.Path; {
		case path == "":
			bad(r.Line, "path: required (\"/exact\" or \"/prefix/*\")")
		case !strings.HasPrefix(path, "/"):
			bad(at("path"), "path %q does not start with /", path)
		case strings.HasSuffix(path, "/*"):
			r.Path, r.Prefix = strings.TrimSuffix(path, "*"), true
			if strings.Contains(r.Path, "*") {
				bad(at("path"), "path %q: * is allowed only as a final /*", path)
			}
		case strings.Contains(path, "*"):
			bad(at("path"), "path %q: * is allowed only as a final /*", path)
		default:
			r.Path = path
		}
		if strings.ContainsAny(fr.Path, "?# ") {
			bad(at("path"), "path %q holds a query, fragment or space", fr.Path)
		}
		paidKeys := fr.Price != "" || fr.KnownPrice != "" || fr.PricingHook != "" || fr.Settle != "" || fr.Quotes ||
			fr.Capability != nil || fr.Access != nil || fr.Terms != nil || fr.InputSchema.Kind != 0 || fr.OutputSchema.Kind != 0
		switch {
		case fr.Free && paidKeys:
			bad(r.Line, "free: true excludes the keys of paid routes (price, settle, quotes, capability, access, terms, schemas…)")
		case fr.Free:
			r.Free = true
		case fr.Price == "" && fr.PricingHook == "":
			bad(r.Line, "price: required (\"$0.01\" or \"<atomic units> <asset address>\"), or pricing_hook, or free: true")
		default:
			r.Price, r.Asset, r.Amount = p.price(fr.Price, f.ChainID, cfg.Assets, "routes", i, "price")
			if fr.KnownPrice != "" {
				if fr.Price == "" {
					bad(at("known_price"), "known_price needs price, the price for unknown buyers")
				}
				r.KnownPrice, _, _ = p.price(fr.KnownPrice, f.ChainID, cfg.Assets, "routes", i, "known_price")
			}
			if fr.PricingHook != "" {
				if u := p.url(fr.PricingHook, "routes", i, "pricing_hook"); u != nil {
					r.PricingHook = u.String()
				}
			}
			p.paidRoute(f, fr, &r, i, bad)
		}
		if fr.Upstream != "" {
			if r.Upstream = p.url(fr.Upstream, "routes", i, "upstream"); r.Upstream == nil {
				ok = false
			}
		} else if cfg.Upstream == nil && f.Upstream == "" {
			bad(r.Line, "no upstream: set the route's upstream or the top-level one")
		}
		for _, name := range p.keysInOrder(fr.Headers, "routes", i, "headers") {
			value := fr.Headers[name]
			line := p.keyLine(name, "routes", i, "headers")
			canon := http.CanonicalHeaderKey(name)
			if !headerName.MatchString(name) || reservedHeaders[canon] {
				bad(line, "header %q may not be set on upstream requests", name)
				continue
			}
			v, err := expandEnv(value, p.env)
			if err != nil {
				bad(line, "header %s: %v", canon, err)
				continue
			}
			if slices.ContainsFunc(r.Headers, func(h Header) bool { return h.Name == canon }) {
				bad(line, "header %s is set twice (names are case-insensitive)", canon)
				continue
			}
			r.Headers = append(r.Headers, Header{Name: canon, Value: v})
		}
		sortHeaders(r.Headers)
		if r.Name == "" {
			r.Name = strings.TrimSpace(strings.Join(methods, ",") + " " + r.Host + fr.Path)
		}
		key := r.Host + " " + strings.Join(sortedCopy(methods), ",") + " " + fr.Path
		if first, dup := seen[key]; dup {
			bad(r.Line, "duplicate of the route at line %d (same host, methods and path); it could never match", first)
		} else {
			seen[key] = r.Line
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

func sortHeaders(h []Header) {
	slices.SortFunc(h, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} with the variable's value. A variable that is not set is an error:
// an upstream credential silently left empty fails far from its cause.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := lookup(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	if strings.ContainsAny(out, "\r\n\x00") {
		return "", errors.New("value holds a line break or NUL")
	}
	return out, nil
}

func (p *parser) addresses(list []string, path ...any) []common.Address {
	var out []common.Address
	for i, s := range list {
		a, err := evm.ParseAddress(s)
		if err != nil {
			p.errf(p.line(append(path, i)...), "%s[%d]: %q is not a 0x address", keyName(path), i, s)
			continue
		}
		out = append(out, a)
	}
	return out
}

// price checks a price against the registry; "" stays "" (a route priced by its hook).
func (p *parser) price(price string, chainID uint64, reg *evm.Registry, path ...any) (string, evm.Asset, evm.Amount) {
	if price == "" || chainID == 0 {
		return price, evm.Asset{}, evm.Amount{}
	}
	asset, amount, err := reg.ParsePrice(chainID, price)
	switch {
	case err != nil:
		p.errf(p.line(path...), "%s: %v", keyName(path), strings.TrimPrefix(err.Error(), evm.ErrPrice.Error()+": "))
	case amount.IsZero():
		p.errf(p.line(path...), "%s: %q is zero; write free: true", keyName(path), price)
	default:
		return price, asset, amount
	}
	return "", evm.Asset{}, evm.Amount{}
}

// paidRoute reads the keys only paid routes have.
func (p *parser) paidRoute(f *file, fr fileRoute, r *Route, i int, bad func(int, string, ...any)) {
	at := func(key string) int { return p.line("routes", i, key) }
	mode, err := paywall.ParseSettleMode(fr.Settle)
	if err != nil {
		bad(at("settle"), "settle %q is not one of after, before, commit, deferred", fr.Settle)
	}
	r.Settle = mode
	if fr.Quotes || fr.QuoteTTL != 0 {
		r.Quotes, r.QuoteTTL = true, fr.QuoteTTL
		if !fr.Quotes {
			bad(at("quote_ttl"), "quote_ttl needs quotes: true")
		}
		if fr.QuoteTTL < 0 || fr.QuoteTTL > 24*time.Hour {
			bad(at("quote_ttl"), "quote_ttl %s is outside 0..24h", fr.QuoteTTL)
		}
	}
	if c := fr.Capability; c != nil {
		if c.TTL < 0 || c.TTL > 30*24*time.Hour {
			bad(p.line("routes", i, "capability", "ttl"), "capability.ttl %s is outside 0..720h", c.TTL)
		}
		for j, sc := range c.Scope {
			if !scopePattern.MatchString(sc) {
				bad(p.line("routes", i, "capability", "scope", j), "capability.scope[%d] %q is not \"METHOD /path\" or \"/path\" (a final * covers a prefix)", j, sc)
			}
		}
		r.Capability = &paywall.CapabilityPolicy{TTL: c.TTL, Uses: c.Uses, Scope: c.Scope}
	}
	if (r.Quotes || r.Capability != nil) && f.Secret == "" {
		bad(r.Line, "quotes and capability tokens need the top-level secret (from the environment)")
	}
	if fr.Access != nil {
		r.Policy = p.policy(fr.Access, f.ChainID, p.assetsOf(f), "routes", i, "access")
	}
	if t := fr.Terms; t != nil {
		r.Terms = &paywall.Terms{Expiry: t.Expiry, Limits: t.Limits, Resale: t.Resale, DataUse: t.DataUse}
	}
	r.InputSchema = p.schema(&fr.InputSchema, "routes", i, "input_schema")
	r.OutputSchema = p.schema(&fr.OutputSchema, "routes", i, "output_schema")
}

var scopePattern = regexp.MustCompile(`^([A-Z]+ )?/[^ ,]*$`)

// schema turns a JSON Schema written in YAML into JSON.
func (p *parser) schema(n *yaml.Node, path ...any) json.RawMessage {
	if n.Kind == 0 {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errf(p.line(path...), "%s: a JSON Schema is a mapping", keyName(path))
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.errf(p.line(path...), "%s: %v", keyName(path), err)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.errf(p.line(path...), "%s: not expressible as JSON: %v", keyName(path), err)
		return nil
	}
	return b
}

var ratePattern = regexp.MustCompile(`^([1-9][0-9]{0,8}) *(?:/|per) *(s|second|m|minute|h|hour|d|day)$`)

// policy reads an access section: the file's, or a route's.
func (p *parser) policy(a *fileAccess, chainID uint64, reg *evm.Registry, path ...any) *paywall.Policy {
	if a == nil {
		return nil
	}
	at := func(keys ...any) []any { return append(append([]any(nil), path...), keys...) }
	pol := &paywall.Policy{
		Block: p.addresses(a.BlockPayers, at("block_payers")...),
		Allow: p.addresses(a.AllowPayers, at("allow_payers")...),
	}
	if a.Rate != "" {
		m := ratePattern.FindStringSubmatch(strings.TrimSpace(a.Rate))
		if m == nil {
			p.errf(p.line(at("rate")...), "%s: %q is not a rate such as 10/s, 600/m or 1000/h", keyName(at("rate")), a.Rate)
		} else {
			n, _ := strconv.Atoi(m[1])
			per := map[string]time.Duration{"s": time.Second, "second": time.Second, "m": time.Minute, "minute": time.Minute,
				"h": time.Hour, "hour": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour}[m[2]]
			pol.Rate = paywall.Rate{Requests: n, Per: per}
		}
	}
	if s := a.Spend; s != nil {
		if s.Max == "" || s.Window < time.Minute {
			p.errf(p.line(at("spend")...), "%s: max (a price) and window (at least 1m) are required", keyName(at("spend")))
		} else if v, _, _ := p.price(s.Max, chainID, reg, at("spend", "max")...); v != "" {
			pol.Spend = paywall.SpendLimit{Max: v, Window: s.Window}
		}
	}
	if a.MinBalance != "" {
		pol.MinBalance, _, _ = p.price(a.MinBalance, chainID, reg, at("min_balance")...)
	}
	return pol
}

// assetsOf is the registry the file's prices are read against (built once per parse).
func (p *parser) assetsOf(f *file) *evm.Registry {
	if p.reg == nil {
		p.reg = p.assets(f)
	}
	return p.reg
}

// minSecretBytes is the shortest secret accepted (paywall.Config.Secret's minimum).
const minSecretBytes = 32

// minTokenBytes is the shortest admin token accepted: short ones can be guessed.
const minTokenBytes = 16

func (p *parser) admin(f *fileAdmin) *Admin {
	a := &Admin{Listen: f.Listen, Path: strings.TrimSuffix(f.Path, "/")}
	if a.Listen == "" && a.Path == "" {
		p.errf(p.line("admin"), "admin: set listen (own address) or path (a prefix on the proxy's listener)")
	}
	if a.Listen != "" {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			p.errf(p.line("admin", "listen"), "admin.listen: %q is not host:port", f.Listen)
		}
	}
	if f.Path != "" && (!strings.HasPrefix(f.Path, "/") || a.Path == "" || strings.ContainsAny(f.Path, "*?# ")) {
		p.errf(p.line("admin", "path"), "admin.path: %q is not a path prefix such as /_quid", f.Path)
	}
	if !envRef.MatchString(f.Token) {
		p.errf(p.line("admin", "token"), "admin.token: required, and must come from the environment, e.g. ${QUID_ADMIN_TOKEN}")
		return a
	}
	tok, err := expandEnv(f.Token, p.env)
	if err != nil {
		p.errf(p.line("admin", "token"), "admin.token: %v", err)
		return a
	}
	if len(tok) < minTokenBytes {
		p.errf(p.line("admin", "token"), "admin.token: shorter than %d characters", minTokenBytes)
	}
	a.Token = tok
	return a
}
