package proxy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/proxy"
	"github.com/quidpay/quid/store"
)

// env is the environment configuration tests resolve ${VAR} against.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

const goodHead = `listen: 127.0.0.1:0
upstream: http://127.0.0.1:9
facilitator: http://127.0.0.1:4021
chain_id: 31337
pay_to: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
`

func TestConfigErrorsCarryLineAndReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		yaml string
		line int
		want string
	}{
		{"unknown top-level key", goodHead + "colour: blue\nroutes: [{path: /a, free: true}]\n", 6, `unknown key "colour"`},
		{"unknown route key", goodHead + "routes:\n  - path: /a\n    free: true\n    prise: $1\n", 9, `unknown key "prise"`},
		{"bad yaml", goodHead + "routes:\n  - path: /a\n   free: true\n", 6, "expected"},
		{"wrong type", goodHead + "routes:\n  - path: /a\n    free: maybe\n", 8, "maybe"},
		{"unknown asset", goodHead + "routes:\n  - path: /a\n    price: 100 0x0000000000000000000000000000000000000042\n", 8, "not registered"},
		{"bad price", goodHead + "routes:\n  - path: /a\n    price: $1.0000001\n", 8, "at most 6 decimals"},
		{"zero price", goodHead + "routes:\n  - path: /a\n    price: $0\n", 8, "zero"},
		{"price and free", goodHead + "routes:\n  - path: /a\n    free: true\n    price: $1\n", 7, "excludes the keys"},
		{"no price", goodHead + "routes:\n  - path: /a\n    description: x\n", 7, "price: required"},
		{"bad path pattern", goodHead + "routes:\n  - path: /a/*/b\n    free: true\n", 7, "final /*"},
		{"relative path", goodHead + "routes:\n  - path: a\n    free: true\n", 7, "does not start with /"},
		{"bad host pattern", goodHead + "routes:\n  - path: /a\n    host: a.*.com\n    free: true\n", 8, "host"},
		{"bad method", goodHead + "routes:\n  - path: /a\n    methods: [get]\n    free: true\n", 8, "upper-case"},
		{"duplicate route", goodHead + "routes:\n  - path: /a\n    free: true\n  - path: /a\n    price: $1\n", 9, "duplicate of the route at line 7"},
		{"missing env var", goodHead + "routes:\n  - path: /a\n    free: true\n    headers:\n      Authorization: Bearer ${NOPE}\n", 10, "NOPE is not set"},
		{"payment header injected", goodHead + "routes:\n  - path: /a\n    free: true\n    headers:\n      X-Payment: x\n", 10, "may not be set"},
		{"bad settle", goodHead + "routes:\n  - path: /a\n    price: $1\n    settle: later\n", 9, "settle"},
		{"bad route upstream", goodHead + "routes:\n  - path: /a\n    free: true\n    upstream: ftp://x\n", 9, "not an http(s) URL"},
		{"credentials in upstream", goodHead + "routes:\n  - path: /a\n    free: true\n    upstream: http://u:secret@x\n", 9, "credentials"},
		{"bad pay_to", strings.Replace(goodHead, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x1234", 1) + "routes: [{path: /a, free: true}]\n", 5, "pay_to"},
		{"no chain_id", strings.Replace(goodHead, "chain_id: 31337\n", "", 1) + "routes: [{path: /a, free: true}]\n", 1, "chain_id: required"},
		{"bad default", goodHead + "default: maybe\nroutes: [{path: /a, free: true}]\n", 6, "neither deny nor pass"},
		{"admin token literal", goodHead + "routes: [{path: /a, free: true}]\nadmin:\n  listen: 127.0.0.1:0\n  token: hunter2hunter2hunter2\n", 9, "environment"},
		{"admin token unset", goodHead + "routes: [{path: /a, free: true}]\nadmin:\n  path: /_quid\n  token: ${UNSET_TOKEN}\n", 9, "UNSET_TOKEN is not set"},
		{"bad blocked payer", goodHead + "routes: [{path: /a, free: true}]\naccess:\n  block_payers: [0xnope]\n", 8, "block_payers[0]"},
		{"header twice", goodHead + "routes:\n  - path: /a\n    free: true\n    headers:\n      x-key: a\n      X-Key: b\n", 11, "set twice"},
		{"admin on the proxy's address", strings.Replace(goodHead, "127.0.0.1:0", "127.0.0.1:8402", 1) + "routes: [{path: /a, free: true}]\nadmin:\n  listen: 127.0.0.1:8402\n  token: ${T}\n", 8, "own address"},
		{"settle on a free route", goodHead + "routes:\n  - path: /a\n    free: true\n    settle: before\n", 7, "excludes"},
		{"bad rate", goodHead + "access:\n  rate: fast\nroutes: [{path: /a, free: true}]\n", 7, "not a rate"},
		{"spend without window", goodHead + "access:\n  spend: {max: $1}\nroutes: [{path: /a, free: true}]\n", 7, "window"},
		{"bad min_balance", goodHead + "access:\n  min_balance: five dollars\nroutes: [{path: /a, free: true}]\n", 7, "min_balance"},
		{"route access blocked payer", goodHead + "routes:\n  - path: /a\n    price: $1\n    access:\n      block_payers: [nope]\n", 10, "routes[0].access.block_payers[0]"},
		{"quotes without secret", goodHead + "routes:\n  - path: /a\n    price: $1\n    quotes: true\n", 7, "secret"},
		{"capability without secret", goodHead + "routes:\n  - path: /a\n    price: $1\n    capability: {uses: 3}\n", 7, "secret"},
		{"secret literal", goodHead + "secret: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nroutes: [{path: /a, free: true}]\n", 6, "environment"},
		{"bad capability scope", goodHead + "secret: ${S}\nroutes:\n  - path: /a\n    price: $1\n    capability:\n      scope: [\"GET api\"]\n", 11, "scope[0]"},
		{"schema not a mapping", goodHead + "routes:\n  - path: /a\n    price: $1\n    input_schema: [1, 2]\n", 9, "mapping"},
		{"known_price without price", goodHead + "routes:\n  - path: /a\n    pricing_hook: http://127.0.0.1:7/price\n    known_price: $1\n", 9, "known_price needs price"},
		{"bad known_price", goodHead + "routes:\n  - path: /a\n    price: $1\n    known_price: 1 dollar\n", 9, "known_price"},
		{"bad pricing hook", goodHead + "routes:\n  - path: /a\n    pricing_hook: localhost:7\n", 8, "pricing_hook"},
		{"unknown settle mode", goodHead + "routes:\n  - path: /a\n    price: $1\n    settle: sometime\n", 9, "after, before, commit, deferred"},
		{"asset without decimals", goodHead + "assets:\n  - address: 0x0000000000000000000000000000000000000042\n    symbol: X\n    name: X\n    version: \"1\"\nroutes: [{path: /a, free: true}]\n", 7, "decimals"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := proxy.Parse("quid.yaml", []byte(tc.yaml), env(nil))
			var errs proxy.ConfigErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("err %v, want ConfigErrors", err)
			}
			for _, e := range errs {
				if e.Line == tc.line && strings.Contains(e.Reason, tc.want) && e.File == "quid.yaml" {
					return
				}
			}
			t.Fatalf("no error at line %d containing %q; got:\n%v", tc.line, tc.want, err)
		})
	}
}

func TestConfigErrorsDoNotShowSecrets(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-upstream-key"
	y := goodHead + "routes:\n  - path: /a\n    free: true\n    headers:\n      Authorization: Bearer ${KEY}\n      X-Other: ${MISSING}\n"
	_, err := proxy.Parse("quid.yaml", []byte(y), env(map[string]string{"KEY": secret}))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("err %v", err)
	}
}

func TestConfigRoutes(t *testing.T) {
	t.Parallel()
	y := goodHead + `default: pass
routes:
  - name: weather
    host: "*.example.com"
    methods: [GET, POST]
    path: /api/*
    price: $0.01
    settle: before
    headers:
      Authorization: Bearer ${KEY}
  - path: /free
    method: GET
    free: true
    upstream: http://127.0.0.1:10/base
`
	cfg, err := proxy.Parse("quid.yaml", []byte(y), env(map[string]string{"KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Default != proxy.DefaultPass || len(cfg.Routes) != 2 {
		t.Fatalf("%+v", cfg)
	}
	r := cfg.Routes[0]
	if r.Name != "weather" || r.Line != 8 || r.Host != "*.example.com" || r.Path != "/api/" || !r.Prefix ||
		r.Amount.Cmp(evm.NewAmount(10_000)) != 0 || r.Asset.Address != evm.DevTokenAddress ||
		len(r.Headers) != 1 || r.Headers[0] != (proxy.Header{Name: "Authorization", Value: "Bearer k"}) {
		t.Fatalf("route %+v", r)
	}
	if f := cfg.Routes[1]; !f.Free || f.Upstream.String() != "http://127.0.0.1:10/base" || f.Name != "GET /free" {
		t.Fatalf("route %+v", f)
	}
}

// The example file documents every key; it must stay loadable.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	_, self, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(self), "..", "examples", "quid.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := proxy.Parse(path, data, env(map[string]string{
		"WEATHER_API_KEY": "k", "QUID_ADMIN_TOKEN": "0123456789abcdef0123", "QUID_SECRET": "0123456789abcdef0123456789abcdef",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) == 0 || cfg.Admin == nil {
		t.Fatalf("example config has no routes or no admin section")
	}
	// The paywall accepts every route as the file configures it. Balances are only read when a
	// request arrives.
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "quid.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := proxy.New(cfg, proxy.Options{Store: db, Balances: paywall.ChainBalances(nil)}); err != nil {
		t.Fatal(err)
	}
}

// What only the paywall can judge (settle: deferred needs a facilitator that batches) is
// refused when the proxy is built, still with the route's line.
func TestNewRefusesWhatTheFacilitatorCannotDo(t *testing.T) {
	t.Parallel()
	y := goodHead + "routes:\n  - path: /a\n    free: true\n  - path: /b\n    price: $1\n    settle: deferred\n"
	cfg, err := proxy.Parse("quid.yaml", []byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = proxy.New(cfg, proxy.Options{})
	var errs proxy.ConfigErrors
	if !errors.As(err, &errs) || errs[0].Line != 9 || !strings.Contains(errs[0].Reason, "defer") {
		t.Fatalf("err %v, want a ConfigError at line 9", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodHead + "routes:\n  - path: /a\n    price: $0.01\n"))
	f.Add([]byte(goodHead + "routes:\n  - path: /api/*\n    host: \"*.x.com\"\n    free: true\n    headers: {A: \"${X}\"}\n"))
	f.Add([]byte("routes: [{path: /a, price: $1, capability: {uses: 1}, access: {rate: 1/s, spend: {max: $1, window: 1h}}}]"))
	f.Add([]byte("{{{{"))
	f.Add([]byte("routes:\n  - input_schema: {a: [1, {b: c}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := proxy.Parse("f.yaml", data, env(map[string]string{"X": "x"}))
		if (cfg == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", cfg, err)
		}
		var errs proxy.ConfigErrors
		if err != nil && (!errors.As(err, &errs) || len(errs) == 0) {
			t.Fatalf("error %T %v is not ConfigErrors", err, err)
		}
	})
}
