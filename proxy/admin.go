package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// The admin API, behind a bearer token:
//
//	GET  /routes                 the routes being served, in match order
//	GET  /payers                 payers, most recently seen first: requests, payments, amounts
//	                             paid, blocked or not (?limit=, default 100)
//	GET  /revenue                totals per asset and per route
//	GET  /refusals               refusals (access policy, invalid credentials), newest first
//	                             (?limit=)
//	POST /payers/{addr}/block    refuse the payer's payments with 403 from now on
//	POST /payers/{addr}/unblock  accept them again
//
// Figures come from the store, shared by every proxy using it. POST /payers/{addr}/block takes
// an optional ?reason=.

func (p *Proxy) adminHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /routes", p.adminRoutes)
	mux.HandleFunc("GET /payers", p.adminPayers)
	mux.HandleFunc("GET /revenue", p.adminRevenue)
	mux.HandleFunc("GET /refusals", p.adminRefusals)
	mux.HandleFunc("POST /payers/{addr}/block", func(w http.ResponseWriter, r *http.Request) { p.adminBlock(w, r, true) })
	mux.HandleFunc("POST /payers/{addr}/unblock", func(w http.ResponseWriter, r *http.Request) { p.adminBlock(w, r, false) })
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hashing both sides makes the comparison constant-time in the token's length too.
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quid admin"`)
			writeError(w, http.StatusUnauthorized, "admin token required")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// AdminRoute is a route as GET /routes shows it. Header values are never shown.
type AdminRoute struct {
	Name        string   `json:"name"`
	Line        int      `json:"line"`
	Host        string   `json:"host,omitempty"`
	Methods     []string `json:"methods,omitempty"`
	Path        string   `json:"path"`
	Free        bool     `json:"free,omitempty"`
	Price       string   `json:"price,omitempty"`
	Asset       string   `json:"asset,omitempty"`
	Amount      string   `json:"amount,omitempty"`
	KnownPrice  string   `json:"knownPrice,omitempty"`
	PricingHook bool     `json:"pricingHook,omitempty"`
	Settle      string   `json:"settle,omitempty"`
	Quotes      bool     `json:"quotes,omitempty"`
	Capability  bool     `json:"capability,omitempty"`
	Upstream    string   `json:"upstream"`
	Headers     []string `json:"headers,omitempty"`
	Description string   `json:"description,omitempty"`
}

func (p *Proxy) adminRoutes(w http.ResponseWriter, r *http.Request) {
	in := p.cur.Load()
	out := make([]AdminRoute, 0, len(in.routes))
	for _, rt := range in.routes {
		a := AdminRoute{Name: rt.Name, Line: rt.Line, Host: rt.Host, Methods: rt.Methods, Path: rt.Pattern(), Free: rt.Free, Description: rt.Description}
		up := rt.Upstream
		if up == nil {
			up = in.cfg.Upstream
		}
		a.Upstream = up.String()
		for _, h := range rt.Headers {
			a.Headers = append(a.Headers, h.Name)
		}
		if !rt.Free {
			a.Price, a.KnownPrice, a.Settle = rt.Price, rt.KnownPrice, rt.Settle.String()
			a.PricingHook, a.Quotes, a.Capability = rt.PricingHook != "", rt.Quotes, rt.Capability != nil
			if rt.Price != "" {
				a.Asset, a.Amount = rt.Asset.Address.Hex(), rt.Amount.String()
			}
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, out)
}

// limitParam reads ?limit=, 1..1000; default 100.
func limitParam(r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1 && n <= 1000
}

// AdminPayer is a payer as GET /payers shows it.
type AdminPayer struct {
	Payer       string        `json:"payer"`
	Requests    int64         `json:"requests"`
	Payments    int64         `json:"payments"`
	Paid        []AdminAmount `json:"paid"`
	LastSeen    time.Time     `json:"lastSeen"`
	Blocked     bool          `json:"blocked"`
	BlockReason string        `json:"blockReason,omitempty"`
}

// AdminAmount is a sum of one asset, in atomic units and, for assets the file knows, decimal.
type AdminAmount struct {
	Asset   string `json:"asset"`
	Atomic  string `json:"atomic"`
	Decimal string `json:"decimal,omitempty"`
	Symbol  string `json:"symbol,omitempty"`
}

func (p *Proxy) amount(asset common.Address, v evm.Amount) AdminAmount {
	a := AdminAmount{Asset: asset.Hex(), Atomic: v.String()}
	cfg := p.cur.Load().cfg
	if known, ok := cfg.Assets.Lookup(cfg.ChainID, asset); ok {
		a.Decimal, a.Symbol = v.Decimal(known.Decimals), known.Symbol
	}
	return a
}

func (p *Proxy) adminPayers(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "limit is 1..1000")
		return
	}
	recs, err := p.opts.Store.Payers(r.Context(), limit)
	if err != nil {
		p.storeFailed(w, err)
		return
	}
	out := make([]AdminPayer, 0, len(recs))
	for _, rec := range recs {
		ap := AdminPayer{Payer: rec.Payer.Hex(), Requests: rec.Requests, Payments: rec.Payments, LastSeen: rec.LastSeen.UTC(), Blocked: rec.Blocked, BlockReason: rec.BlockReason, Paid: []AdminAmount{}}
		for _, t := range rec.Paid {
			ap.Paid = append(ap.Paid, p.amount(t.Asset, t.Amount))
		}
		out = append(out, ap)
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminRevenue is one route's takings in one asset, as GET /revenue shows them.
type AdminRevenue struct {
	Route    string `json:"route"`
	Payments int64  `json:"payments"`
	AdminAmount
}

// AdminRevenues is what GET /revenue answers: per route, and totals per asset.
type AdminRevenues struct {
	Routes []AdminRevenue `json:"routes"`
	Total  []AdminAmount  `json:"total"`
}

func (p *Proxy) adminRevenue(w http.ResponseWriter, r *http.Request) {
	revs, err := p.opts.Store.Revenue(r.Context())
	if err != nil {
		p.storeFailed(w, err)
		return
	}
	out := AdminRevenues{Routes: []AdminRevenue{}, Total: []AdminAmount{}}
	totals := map[common.Address]evm.Amount{}
	var order []common.Address
	for _, rv := range revs {
		out.Routes = append(out.Routes, AdminRevenue{Route: rv.Route, Payments: rv.Payments, AdminAmount: p.amount(rv.Asset, rv.Total)})
		sum, seen := totals[rv.Asset]
		if !seen {
			order = append(order, rv.Asset)
		}
		if v, ok := sum.Add(rv.Total); ok {
			totals[rv.Asset] = v
		}
	}
	for _, a := range order {
		out.Total = append(out.Total, p.amount(a, totals[a]))
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminRefusal is a refused request, as GET /refusals shows it.
type AdminRefusal struct {
	At     time.Time `json:"at"`
	Payer  string    `json:"payer,omitempty"`
	Route  string    `json:"route"`
	Reason string    `json:"reason"`
	Status int       `json:"status"`
}

func (p *Proxy) adminRefusals(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "limit is 1..1000")
		return
	}
	refs, err := p.opts.Store.Refusals(r.Context(), limit)
	if err != nil {
		p.storeFailed(w, err)
		return
	}
	out := make([]AdminRefusal, 0, len(refs))
	for _, rf := range refs {
		a := AdminRefusal{At: rf.At.UTC(), Route: rf.Route, Reason: rf.Reason, Status: rf.Status}
		if rf.Payer != (common.Address{}) {
			a.Payer = rf.Payer.Hex()
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, out)
}

// maxBlockReason bounds the reason an admin gives for a block.
const maxBlockReason = 512

func (p *Proxy) adminBlock(w http.ResponseWriter, r *http.Request, block bool) {
	addr, err := evm.ParseAddress(r.PathValue("addr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a 0x address")
		return
	}
	if block {
		reason := r.URL.Query().Get("reason")
		if len(reason) > maxBlockReason {
			writeError(w, http.StatusBadRequest, "reason too long")
			return
		}
		err = p.opts.Store.BlockPayer(r.Context(), addr, reason)
	} else {
		err = p.opts.Store.UnblockPayer(r.Context(), addr)
	}
	if err != nil {
		p.storeFailed(w, err)
		return
	}
	p.log.Info("payer access changed by the admin API", "payer", addr.Hex(), "blocked", block)
	writeJSON(w, http.StatusOK, struct {
		Payer   string `json:"payer"`
		Blocked bool   `json:"blocked"`
	}{addr.Hex(), block})
}

func (p *Proxy) storeFailed(w http.ResponseWriter, err error) {
	p.log.Error("admin API: store", "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "store unavailable")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := x402.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
