package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// The admin API, behind a bearer token:
//
//	GET  /routes                 the routes being served, in match order
//	GET  /payers                 every payer seen: payments, amounts, refusals, blocked or not
//	GET  /revenue                totals per asset and per route
//	GET  /refusals               the most recent refusals, newest first
//	POST /payers/{addr}/block    refuse the payer's payments with 403 from now on
//	POST /payers/{addr}/unblock  accept them again
//
// Figures are kept in memory since the proxy started; the chain is the record of payments.

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
	Settle      string   `json:"settle,omitempty"`
	Upstream    string   `json:"upstream"`
	Headers     []string `json:"headers,omitempty"`
	Description string   `json:"description,omitempty"`
}

func (p *Proxy) adminRoutes(w http.ResponseWriter, r *http.Request) {
	in := p.cur.Load()
	out := make([]AdminRoute, 0, len(in.routes))
	for _, rt := range in.routes {
		a := AdminRoute{Name: rt.Name, Line: rt.Line, Host: rt.Host, Methods: rt.Methods, Path: rt.Path, Free: rt.Free, Description: rt.Description}
		if rt.Prefix {
			a.Path += "*"
		}
		up := rt.Upstream
		if up == nil {
			up = in.cfg.Upstream
		}
		a.Upstream = up.String()
		for _, h := range rt.Headers {
			a.Headers = append(a.Headers, h.Name)
		}
		if !rt.Free {
			a.Price, a.Asset, a.Amount, a.Settle = rt.Price, rt.Asset.Address.Hex(), rt.Amount.String(), settleName(rt)
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, out)
}

func settleName(rt *route) string {
	return [...]string{"after", "before", "deferred"}[rt.Settle]
}

func (p *Proxy) adminPayers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.stats.payers(p.block))
}

func (p *Proxy) adminRevenue(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.stats.revenue())
}

func (p *Proxy) adminRefusals(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.stats.recentRefusals())
}

func (p *Proxy) adminBlock(w http.ResponseWriter, r *http.Request, block bool) {
	addr, err := evm.ParseAddress(r.PathValue("addr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a 0x address")
		return
	}
	p.block.set(addr, block)
	p.log.Info("payer access changed by the admin API", "payer", addr.Hex(), "blocked", block)
	writeJSON(w, http.StatusOK, struct {
		Payer   string `json:"payer"`
		Blocked bool   `json:"blocked"`
	}{addr.Hex(), p.block.has(addr)})
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

// blocklist is the payers refused: those the file lists, plus those the admin API blocked.
// Admin decisions survive reloads; the file's list is replaced by each reload.
type blocklist struct {
	mu         sync.RWMutex
	configured map[common.Address]bool
	admin      map[common.Address]bool // true: blocked, false: unblocked (overrides the file)
}

func newBlocklist() *blocklist {
	return &blocklist{configured: map[common.Address]bool{}, admin: map[common.Address]bool{}}
}

func (b *blocklist) setConfigured(list []common.Address) {
	m := make(map[common.Address]bool, len(list))
	for _, a := range list {
		m[a] = true
	}
	b.mu.Lock()
	b.configured = m
	b.mu.Unlock()
}

func (b *blocklist) set(a common.Address, blocked bool) {
	b.mu.Lock()
	b.admin[a] = blocked
	b.mu.Unlock()
}

func (b *blocklist) has(a common.Address) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if v, ok := b.admin[a]; ok {
		return v
	}
	return b.configured[a]
}

// recorder keeps the figures the admin API shows.
type recorder struct {
	now      func() time.Time
	mu       sync.Mutex
	byPayer  map[common.Address]*payerStats
	byRoute  map[string]map[common.Address]*total // route → asset → total
	assets   map[common.Address]evm.Asset
	refusals []Refusal // ring buffer
	next     int
}

// maxRefusals is how many recent refusals are kept; maxPayers bounds the payer table, which a
// flood of forged payers could otherwise grow without end.
const (
	maxRefusals = 1000
	maxPayers   = 100_000
)

type payerStats struct {
	payments int
	refusals int
	spent    map[common.Address]*total
	last     time.Time
}

type total struct {
	count  int
	amount evm.Amount
}

func newRecorder(now func() time.Time) *recorder {
	return &recorder{now: now, byPayer: map[common.Address]*payerStats{}, byRoute: map[string]map[common.Address]*total{}, assets: map[common.Address]evm.Asset{}}
}

func (s *recorder) payer(a common.Address) *payerStats {
	ps := s.byPayer[a]
	if ps == nil {
		if len(s.byPayer) >= maxPayers {
			return &payerStats{spent: map[common.Address]*total{}}
		}
		ps = &payerStats{spent: map[common.Address]*total{}}
		s.byPayer[a] = ps
	}
	return ps
}

func addTo(m map[common.Address]*total, asset common.Address, amount evm.Amount) {
	t := m[asset]
	if t == nil {
		t = &total{}
		m[asset] = t
	}
	t.count++
	if sum, ok := t.amount.Add(amount); ok {
		t.amount = sum
	}
}

func (s *recorder) paid(routeName string, payer common.Address, asset evm.Asset, amount evm.Amount, tx string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assets[asset.Address] = asset
	ps := s.payer(payer)
	ps.payments++
	ps.last = s.now()
	addTo(ps.spent, asset.Address, amount)
	rt := s.byRoute[routeName]
	if rt == nil {
		rt = map[common.Address]*total{}
		s.byRoute[routeName] = rt
	}
	addTo(rt, asset.Address, amount)
}

// Refusal is a paid request that was not served, as GET /refusals shows it.
type Refusal struct {
	Time   time.Time `json:"time"`
	Route  string    `json:"route"`
	Payer  string    `json:"payer"`
	Status int       `json:"status"`
	Reason string    `json:"reason"`
}

func (s *recorder) refused(routeName string, payer common.Address, status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ps := s.payer(payer)
	ps.refusals++
	ps.last = now
	ref := Refusal{Time: now.UTC(), Route: routeName, Payer: payer.Hex(), Status: status, Reason: reason}
	if len(s.refusals) < maxRefusals {
		s.refusals = append(s.refusals, ref)
	} else {
		s.refusals[s.next] = ref
	}
	s.next = (s.next + 1) % maxRefusals
}

func (s *recorder) recentRefusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.refusals)
	out := make([]Refusal, 0, n)
	for i := range n {
		// Walk back from the newest, which is just before next.
		out = append(out, s.refusals[(s.next-1-i+n)%n])
	}
	return out
}

// Amount is a sum in one asset, as the admin API shows it.
type Amount struct {
	Asset    string `json:"asset"`
	Symbol   string `json:"symbol"`
	Atomic   string `json:"atomic"`
	Decimal  string `json:"decimal"`
	Payments int    `json:"payments"`
}

// Payer is one payer, as GET /payers shows it.
type Payer struct {
	Payer    string    `json:"payer"`
	Payments int       `json:"payments"`
	Refusals int       `json:"refusals"`
	Spent    []Amount  `json:"spent"`
	Last     time.Time `json:"last"`
	Blocked  bool      `json:"blocked"`
}

// Revenue is what GET /revenue answers.
type Revenue struct {
	Total   []Amount            `json:"total"`
	ByRoute map[string][]Amount `json:"byRoute"`
}

func (s *recorder) amounts(m map[common.Address]*total) []Amount {
	out := make([]Amount, 0, len(m))
	for addr, t := range m {
		a := s.assets[addr]
		out = append(out, Amount{Asset: addr.Hex(), Symbol: a.Symbol, Atomic: t.amount.String(), Decimal: t.amount.Decimal(a.Decimals), Payments: t.count})
	}
	slices.SortFunc(out, func(a, b Amount) int { return strings.Compare(a.Asset, b.Asset) })
	return out
}

func (s *recorder) payers(b *blocklist) []Payer {
	s.mu.Lock()
	out := make([]Payer, 0, len(s.byPayer))
	for addr, ps := range s.byPayer {
		out = append(out, Payer{Payer: addr.Hex(), Payments: ps.payments, Refusals: ps.refusals, Spent: s.amounts(ps.spent), Last: ps.last.UTC()})
	}
	s.mu.Unlock()
	for i := range out {
		out[i].Blocked = b.has(common.HexToAddress(out[i].Payer))
	}
	slices.SortFunc(out, func(a, b Payer) int { return strings.Compare(a.Payer, b.Payer) })
	return out
}

func (s *recorder) revenue() Revenue {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := map[common.Address]*total{}
	rev := Revenue{ByRoute: map[string][]Amount{}}
	for name, m := range s.byRoute {
		rev.ByRoute[name] = s.amounts(m)
		for addr, t := range m {
			sum := all[addr]
			if sum == nil {
				sum = &total{}
				all[addr] = sum
			}
			sum.count += t.count
			if v, ok := sum.amount.Add(t.amount); ok {
				sum.amount = v
			}
		}
	}
	rev.Total = s.amounts(all)
	return rev
}
