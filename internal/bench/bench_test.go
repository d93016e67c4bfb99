package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	t.Parallel()
	prevHi := int64(-1)
	for i := 0; i < 64*50; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, the previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d is [%d, %d]", i, lo, hi)
		}
		for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
			if b := bucketOf(v); b != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, b, i)
			}
		}
		// A bucket is at most 1/64 of its values wide, so its midpoint is within 1/128 of them.
		if lo >= 128 && float64(hi-lo+1) > float64(lo)/64 {
			t.Fatalf("bucket %d [%d, %d] is too wide", i, lo, hi)
		}
		prevHi = hi
	}
}

func TestHistQuantilesMatchExact(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"log-uniform 1ns..100s": func() int64 { return int64(math.Pow(10, rng.Float64()*11)) },
		"small exact values":    func() int64 { return rng.Int64N(200) },
		"bimodal":               func() int64 { return []int64{30_000, 150_000_000}[rng.IntN(2)] + rng.Int64N(1000) },
		"constant":              func() int64 { return 41_337 },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{1, 2, 7, 100, 10_000} {
				var h hist
				vals := make([]int64, n)
				for i := range vals {
					vals[i] = gen()
					h.record(time.Duration(vals[i]))
				}
				slices.Sort(vals)
				for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
					want := exactQuantile(vals, q)
					got := int64(h.quantile(q))
					if tol := float64(want)/128 + 1; math.Abs(float64(got-want)) > tol {
						t.Errorf("n=%d q=%v: %d, exact %d", n, q, got, want)
					}
				}
				if got := int64(h.quantile(1)); got != vals[n-1] {
					t.Errorf("n=%d: max quantile %d, want the exact maximum %d", n, got, vals[n-1])
				}
				if int64(h.max) != vals[n-1] || int64(h.min) != vals[0] || h.n != uint64(n) {
					t.Errorf("n=%d: min %d max %d count %d", n, h.min, h.max, h.n)
				}
			}
		})
	}
}

func TestHistMergeEqualsOne(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	var all, a, b hist
	for i := range 5000 {
		d := time.Duration(rng.Int64N(int64(time.Second)))
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var merged hist
	merged.merge(&a)
	merged.merge(&b)
	merged.merge(&hist{}) // empty: no effect
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if merged.quantile(q) != all.quantile(q) {
			t.Errorf("q=%v: merged %v, one histogram %v", q, merged.quantile(q), all.quantile(q))
		}
	}
	if merged.n != all.n || merged.min != all.min || merged.max != all.max || merged.mean() != all.mean() {
		t.Errorf("merged n=%d min=%d max=%d mean=%v; one n=%d min=%d max=%d mean=%v",
			merged.n, merged.min, merged.max, merged.mean(), all.n, all.min, all.max, all.mean())
	}
}

func TestHistEmptyAndNegative(t *testing.T) {
	t.Parallel()
	var h hist
	if h.quantile(0.5) != 0 || h.mean() != 0 {
		t.Fatal("empty histogram is not zero")
	}
	h.record(-time.Second)
	if h.quantile(0.99) != 0 || h.n != 1 {
		t.Fatalf("negative duration recorded as %v", h.quantile(0.99))
	}
}

func TestRunLoadCountsWindowOnly(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var windowSeen atomic.Bool
	errOdd := errors.New("odd call")
	s, err := runLoad(context.Background(), loadConfig{
		warmup: 30 * time.Millisecond, duration: 100 * time.Millisecond, workers: 3,
		started: func(from, to time.Time) {
			if to.Sub(from) == 100*time.Millisecond {
				windowSeen.Store(true)
			}
		},
	}, func(ctx context.Context, w int) (int, error) {
		if w < 0 || w >= 3 {
			t.Errorf("worker %d", w)
		}
		time.Sleep(time.Millisecond)
		if calls.Add(1)%2 == 1 {
			return 0, errOdd
		}
		return 3, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !windowSeen.Load() {
		t.Error("started was not told the window")
	}
	if s.ops == 0 || s.errs == 0 {
		t.Fatalf("ops %d errors %d: both kinds should have been counted", s.ops, s.errs)
	}
	if !errors.Is(s.firstErr, errOdd) {
		t.Errorf("first error %v", s.firstErr)
	}
	if s.ops+s.errs >= calls.Load() {
		t.Errorf("%d ops and %d errors counted of %d calls: the warmup was counted", s.ops, s.errs, calls.Load())
	}
	if s.units != 3*s.ops || s.succeeded < s.units || s.lat.n != uint64(s.ops) {
		t.Errorf("units %d, succeeded %d, latencies %d, ops %d", s.units, s.succeeded, s.lat.n, s.ops)
	}
	if s.lat.quantile(0.5) < time.Millisecond {
		t.Errorf("p50 %v below the operation's own sleep", s.lat.quantile(0.5))
	}
	if s.window != 100*time.Millisecond {
		t.Errorf("window %v", s.window)
	}
}

func TestRunLoadExtendsShortWindow(t *testing.T) {
	t.Parallel()
	s, err := runLoad(context.Background(), loadConfig{duration: 20 * time.Millisecond, workers: 2}, one(func(ctx context.Context, _ int) error {
		time.Sleep(100 * time.Millisecond)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.ops < 1 || s.window <= 20*time.Millisecond {
		t.Fatalf("%d ops in a %v window: the window should have been extended to take one", s.ops, s.window)
	}
}

func TestRunLoadStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := runLoad(ctx, loadConfig{duration: time.Hour, workers: 2}, one(func(ctx context.Context, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// sampleReport is a report as a run would make it, with every kind of row.
func sampleReport() *Report {
	res := func(id, num, name string, rate, p50, p99, cpu, chain float64) *Result {
		return &Result{ID: id, Scenario: num, Name: name, Unit: "one " + id, Status: StatusOK, Ops: int64(rate * 10), Window: 10,
			PerSecond: rate, P50: p50, P90: p99 * 0.8, P99: p99, Max: p99 * 2, Mean: p50, CPUPerOp: cpu, ChainCPUPerOp: chain,
			CPUSelf: cpu * rate * 10 / 1e6, CPUChain: chain * rate * 10 / 1e6, PeakRSSSelf: 60 << 20}
	}
	rep := &Report{Meta: Meta{Command: "quid bench --duration 10s", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), GoVersion: "go1.26.8",
		CPUModel: "Test CPU <&>", NumCPU: 2, GOMAXPROCS: 2, Concurrency: 16, DurationSeconds: 10}}
	peer := res("ts-peer", "5", "@x402/express + TS facilitator", 40, 380_000, 950_000, 16_800, 5_200)
	peer.CPUNode, peer.PeakRSSNode = 10, 140<<20
	exact := res("exact", "3", "quid x402 exact, end to end", 95, 170_000, 290_000, 4_500, 6_500)
	exact.Phases = []Phase{{Name: "facilitator.Settle", N: 950, PerOp: 1, P50: 150_000, P99: 280_000, Mean: 151_000}}
	exact.Details = []Detail{{Name: "on-chain check", Value: "ok"}}
	failed := &Result{ID: "settle-raw", Scenario: "7", Name: "settle: raw", Status: StatusFailed, Errors: 3, FirstError: "boom"}
	rep.Scenarios = []*Result{
		res("floor", "1", "floor: ECDSA recovery", 50_000, 30, 1_400, 33.6, 0),
		res("verify-path", "1", "verify path", 48_000, 31, 330, 35.2, 0),
		res("unpaid", "2", "unpaid baseline", 40_000, 270, 4_400, 32.4, 0),
		exact,
		{ID: "capability", Scenario: "4", Name: "quid capability token", Status: StatusSkipped, Note: "Capability tokens do not exist yet (issue 5)."},
		peer,
		failed,
	}
	rep.finish()
	return rep
}

func TestFinishRatiosAndTargets(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	exact := rep.find("exact")
	if exact.VsUnpaid == nil || math.Abs(exact.VsUnpaid.Throughput-95.0/40_000) > 1e-12 || math.Abs(exact.VsUnpaid.CPU-4_500/32.4) > 1e-9 {
		t.Fatalf("exact vs unpaid: %+v", exact.VsUnpaid)
	}
	if rep.find("unpaid").VsUnpaid != nil || rep.find("capability").VsUnpaid != nil || rep.find("settle-raw").VsUnpaid != nil {
		t.Fatal("ratios on the baseline, a skipped or a failed row")
	}
	want := map[string]*bool{
		"verify path (EIP-712 digest + recover + compare) within 1.3× of the floor": boolp(true),
		"facilitator.Verify in-process within 1.3× of the floor":                    nil, // not run
		"paid exact requests at 25% or more of unpaid throughput":                   boolp(false),
		"paid exact requests at 25% or more of unpaid throughput (SettleDeferred)":  nil, // not run
		"capability-token requests at 80% or more of unpaid throughput":             nil,
		"10× the throughput of the TypeScript peer":                                 boolp(false),
		"p99 at most a tenth of the TypeScript peer's":                              boolp(false),
		"10× the throughput of the TypeScript peer (SettleDeferred)":                nil,
		"p99 at most a tenth of the TypeScript peer's (SettleDeferred)":             nil,
	}
	if len(rep.Targets) != len(want) {
		t.Fatalf("%d targets", len(rep.Targets))
	}
	for _, tg := range rep.Targets {
		w, ok := want[tg.Name]
		if !ok {
			t.Errorf("unexpected target %q", tg.Name)
			continue
		}
		if (w == nil) != (tg.Met == nil) || (w != nil && *w != *tg.Met) {
			t.Errorf("%s: met %v, want %v (%s)", tg.Name, deref(tg.Met), deref(w), tg.Measured)
		}
	}
	if v := rep.Targets[0].Value; math.Abs(v-35.2/33.6) > 1e-9 {
		t.Errorf("verify path ratio %v, want CPU ratio %v", v, 35.2/33.6)
	}
	if v := rep.Targets[5].Value; math.Abs(v-95.0/40) > 1e-9 {
		t.Errorf("peer throughput ratio %v", v)
	}
}

func deref(b *bool) string {
	if b == nil {
		return "n/a"
	}
	if *b {
		return "met"
	}
	return "missed"
}

func TestFill(t *testing.T) {
	t.Parallel()
	s := &sample{ops: 50, units: 500, errs: 2, firstErr: errors.New("x"), window: 2 * time.Second,
		cpuSelf: 100 * time.Millisecond, cpuNode: 50 * time.Millisecond, cpuChain: 300 * time.Millisecond}
	for range 50 {
		s.lat.record(2 * time.Millisecond)
	}
	var r Result
	r.fill(s)
	if r.Status != StatusOK || r.Ops != 500 || r.PerSecond != 250 || r.Errors != 2 || r.FirstError != "x" {
		t.Fatalf("%+v", r)
	}
	if math.Abs(r.CPUPerOp-300) > 1e-9 || math.Abs(r.ChainCPUPerOp-600) > 1e-9 {
		t.Fatalf("CPU per op %v, chain %v; want 300 and 600 µs", r.CPUPerOp, r.ChainCPUPerOp)
	}
	if math.Abs(r.P50-2000)/2000 > 0.01 {
		t.Fatalf("p50 %v µs", r.P50)
	}
	var empty Result
	empty.fill(&sample{window: time.Second})
	if empty.Status != StatusFailed || empty.FirstError == "" {
		t.Fatalf("a window without a success: %+v", empty)
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	// The table proper: header, rule, one line per scenario, all of one width but the last
	// column's, which is not padded.
	header := lines[0]
	for _, col := range []string{"scenario", "ops/s", "×unpaid", "p50", "p99", "CPU µs/op", "chain µs/op", "RSS MiB", "errors"} {
		if !strings.Contains(header, col) {
			t.Errorf("header lacks %q: %s", col, header)
		}
	}
	errCol := utf8.RuneCountInString(header) - len("errors")
	for i, l := range lines[2:9] {
		if got := utf8.RuneCountInString(strings.TrimRight(l, " ")); got < errCol && !strings.Contains(l, "skipped") {
			t.Errorf("row %d is %d wide, want ≥ %d: %q", i, got, errCol, l)
		}
	}
	for _, want := range []string{
		"40,000", "1×", "170 ms", "290 ms", "4,500", "6,500", "60+140", // unpaid rate, latencies, CPU, chain, RSS with node
		"skipped", "failed", "boom",
		"facilitator.Settle", "on-chain check: ok",
		"[met ] verify path", "[MISS] paid exact", "[n/a ] capability-token",
		"SKIPPED. Capability tokens do not exist yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"p50_us"`, `"p99_us"`, `"per_second"`, `"cpu_us_per_op"`, `"chain_cpu_us_per_op"`, `"vs_unpaid"`,
		`"peak_rss_bench_process_bytes"`, `"peak_rss_node_bytes"`, `"targets"`, `"met": null`, `"nproc"`, `"cpu_model"`} {
		if !bytes.Contains(b.Bytes(), []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Scenarios) != len(rep.Scenarios) || back.Meta.Command != rep.Meta.Command || !back.Meta.Date.Equal(rep.Meta.Date) {
		t.Fatalf("round trip lost data: %+v", back.Meta)
	}
	e := back.find("exact")
	if e == nil || e.PerSecond != 95 || e.P99 != 290_000 || e.VsUnpaid == nil || len(e.Phases) != 1 || e.Phases[0].PerOp != 1 {
		t.Fatalf("exact after the round trip: %+v", e)
	}
}

func TestWriteSVG(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	var b bytes.Buffer
	if err := rep.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Well-formed XML with an svg root.
	dec := xml.NewDecoder(strings.NewReader(out))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q", root)
	}
	for _, want := range []string{"floor: ECDSA recovery", "quid x402 exact, end to end", "@x402/express + TS facilitator",
		"skipped: Capability tokens do not exist yet", "failed: boom", "Test CPU &lt;&amp;&gt;", "Targets", "✓", "✗",
		"40,000", "95.0  (0.002×)", "170 ms / 290 ms", "4,500 + chain 6,500"} {
		if !strings.Contains(out, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(out, bad) {
			t.Errorf("chart contains %s", bad)
		}
	}
	// An empty report still draws.
	b.Reset()
	if err := (&Report{}).WriteSVG(&b); err != nil || !strings.Contains(b.String(), "</svg>") {
		t.Fatalf("empty report: %v", err)
	}
}

func TestLogAxis(t *testing.T) {
	t.Parallel()
	a := newLogAxis([]float64{3, 42_000, 0, math.NaN()}, 100, 500)
	if a.lo != 1 || a.hi != 100_000 {
		t.Fatalf("axis [%v, %v], want [1, 100000]", a.lo, a.hi)
	}
	if a.x(1) != 100 || a.x(100_000) != 600 || math.Abs(a.x(1000)-400) > 1e-9 {
		t.Fatalf("x(1)=%v x(1e3)=%v x(1e5)=%v", a.x(1), a.x(1000), a.x(100_000))
	}
	if got := a.decades(); len(got) != 6 {
		t.Fatalf("decades %v", got)
	}
	if one := newLogAxis([]float64{10}, 0, 1); one.hi <= one.lo || one.x(10) <= one.x0 {
		t.Fatalf("single value axis [%v, %v]: its bar does not show", one.lo, one.hi)
	}
	if low := newLogAxis([]float64{115, 55_000}, 0, 100); low.lo != 10 || low.hi != 100_000 {
		t.Fatalf("axis [%v, %v], want [10, 100000] so that 115 shows", low.lo, low.hi)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{num(1234567.4), "1,234,567"}, {num(123.4), "123"}, {num(12.34), "12.3"}, {num(1.234), "1.23"}, {num(math.NaN()), "-"},
		{dur(12.34), "12.3 µs"}, {dur(1234), "1.23 ms"}, {dur(2_500_000), "2.50 s"}, {dur(0), "-"},
		{ratio(0.0023), "0.002×"}, {ratio(0.25), "0.25×"}, {ratio(12.3), "12.3×"}, {ratio(1234), "1234×"},
		{cpuNum(16799.4), "16,799"}, {cpuNum(33.64), "33.6"}, {mib(60 << 20), "60"}, {mib(0), "-"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestProgressLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := &progress{w: &b, n: 2, total: time.Second}
	p.start(1, "unpaid baseline")
	p.update(time.Second, 0, 100) // not a terminal: nothing drawn
	p.done(&Result{Name: "unpaid baseline", Status: StatusOK, PerSecond: 100, P50: 10, P99: 20, CPUPerOp: 5})
	p.start(2, "quid capability token")
	p.done(&Result{Name: "quid capability token", Status: StatusSkipped})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "quid bench: [1/2] unpaid baseline: 100 ops/s") || !strings.Contains(lines[1], "[2/2] quid capability token: skipped") {
		t.Fatalf("progress:\n%s", b.String())
	}
	if strings.Contains(b.String(), "\r") {
		t.Fatal("carriage returns without a terminal")
	}

	b.Reset()
	p = &progress{w: &b, term: true, n: 1, total: time.Second}
	p.start(1, "floor")
	p.update(500*time.Millisecond, 100*time.Millisecond, 400)
	if !strings.Contains(b.String(), "\r") || !strings.Contains(b.String(), "50%") || !strings.Contains(b.String(), "1,000 ops/s") {
		t.Fatalf("bar: %q", b.String())
	}
}

func TestFindInterop(t *testing.T) {
	t.Parallel()
	dir, err := FindInterop(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "scripts", "bench-peer.mjs")); err != nil {
		t.Fatalf("%s has no scripts/bench-peer.mjs: %v", dir, err)
	}
	if _, err := FindInterop(t.TempDir()); err == nil {
		t.Fatal("found an interop directory outside the checkout")
	}
}

func TestProcessStats(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := childCPU(os.Getpid()); err != nil {
		t.Fatalf("reading our own /proc stat: %v", err)
	}
	if selfPeakRSS() <= 0 || childPeakRSS(os.Getpid()) <= 0 {
		t.Fatal("no peak RSS")
	}
	if cpuModel() == "" {
		t.Fatal("no CPU model")
	}
}
