// Package bench measures what a paid request costs with quid, against an unpaid request, the
// cost floor of an x402 exact payment (one ECDSA recovery), the TypeScript x402 stack on the same
// devnet, and on-chain settlement, all in one run on one machine, so that the ratios mean
// something. `quid bench` is its command line.
//
// Every scenario is driven by the same closed-loop Go load generator at the same concurrency
// (load.go). Each starts from a fresh devnet, store and servers, so no scenario inherits another's
// state. The devnet runs in a process of its own when the caller says how to start one
// (Config.ChainProcess; `quid bench` starts itself again). CPU time over the measured window is
// the bench process's own (getrusage) and, apart, the chain's and the node peer's
// (/proc/<pid>/stat); peak memory is VmHWM, the bench process's reset between scenarios.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Config configures a run. Zero values take the documented defaults.
type Config struct {
	// Duration is the measured window of each scenario. Default 10s.
	Duration time.Duration
	// Warmup runs before each window, unmeasured. Default a fifth of Duration, at most 2s.
	Warmup time.Duration
	// Concurrency is the number of load generator workers. Default 16.
	Concurrency int
	// ChainLead is devnet.Config.MaxTimestampLead of the devnets. Default DefaultChainLead.
	ChainLead time.Duration
	// Interop is the interop directory (the TypeScript peer's packages and scripts). Default:
	// found from the working directory.
	Interop string
	// InstallPeers runs `npm ci --prefix interop` when the peer's packages are missing.
	// Otherwise AskInstall, if set, is asked; without either the peer is skipped with a note.
	InstallPeers bool
	AskInstall   func() bool
	// ChainProcess, if set, returns the command of a chain process: one that runs ServeChain
	// with the lead given. Each scenario then has its devnet in a process of its own, so that
	// the chain's CPU time and memory are told apart from the payment stack's. Otherwise the
	// devnets run in this process.
	ChainProcess func(lead time.Duration) (*exec.Cmd, error)
	// Only, if not empty, lists the scenario ids to run (see Scenarios).
	Only []string
	// Command is the command line recorded in the report.
	Command string
	// Progress receives progress: a bar redrawn in place when Terminal, else a line per scenario.
	Progress io.Writer
	Terminal bool
}

// Defaults of Config.
const (
	DefaultDuration    = 10 * time.Second
	DefaultConcurrency = 16
	// DefaultChainLead lets the devnet seal blocks back to back for as long as any scenario
	// runs: each block must be stamped a second after its parent, so a devnet mining hundreds of
	// blocks a second runs ahead of the clock by that many seconds. With the devnet's default
	// bound (2 s) it would soon seal one block a second, and every synchronous settlement would
	// wait for it: the bench would measure the devnet's clock, not the payment stacks.
	DefaultChainLead = 6 * time.Hour
	// maxTimeoutMargin is how much longer than the lead authorizations stay valid, so that the
	// token, which checks validBefore against block time, never finds one expired.
	maxTimeoutMargin = time.Hour
)

func (c Config) withDefaults() Config {
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup <= 0 {
		c.Warmup = min(c.Duration/5, 2*time.Second)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ChainLead == 0 {
		c.ChainLead = DefaultChainLead
	}
	return c
}

// maxTimeout is the maxTimeoutSeconds of the bench's routes.
func (c Config) maxTimeout() time.Duration {
	if c.ChainLead < 0 {
		return 7 * 24 * time.Hour // no bound on the lead; a week is what quid's facilitator accepts
	}
	return (c.ChainLead + maxTimeoutMargin).Truncate(time.Second)
}

// scenario is one row of the report.
type scenario struct {
	id, num, name, unit string
	run                 func(ctx context.Context, b *runner, r *Result) error
}

// Scenarios lists the scenario ids in the order they run.
func Scenarios() []string {
	var ids []string
	for _, s := range scenarios {
		ids = append(ids, s.id)
	}
	return ids
}

// runner runs the scenarios of one Run.
type runner struct {
	cfg    Config
	dir    string // scratch space: SQLite stores
	prog   *progress
	report *Report
}

// Run runs the scenarios and returns the report. A scenario that fails is reported as failed
// and the run goes on; Run returns an error only when it could not run at all or ctx ended.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	for _, id := range cfg.Only {
		if !slices.Contains(Scenarios(), id) {
			return nil, fmt.Errorf("unknown scenario %q (scenarios: %s)", id, strings.Join(Scenarios(), ", "))
		}
	}
	dir, err := os.MkdirTemp("", "quid-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	began := time.Now()
	rep := &Report{Meta: meta(cfg, dir)}
	b := &runner{cfg: cfg, dir: dir, report: rep}
	var todo []scenario
	for _, s := range scenarios {
		if len(cfg.Only) == 0 || slices.Contains(cfg.Only, s.id) {
			todo = append(todo, s)
		}
	}
	b.prog = &progress{w: cfg.Progress, term: cfg.Terminal, n: len(todo), total: cfg.Warmup + cfg.Duration}
	for i, s := range todo {
		r := &Result{ID: s.id, Scenario: s.num, Name: s.name, Unit: s.unit}
		rep.Scenarios = append(rep.Scenarios, r)
		b.prog.start(i+1, s.name)
		reset := resetPeakRSS()
		err := s.run(ctx, b, r)
		if ctx.Err() != nil {
			b.prog.clear()
			return nil, ctx.Err()
		}
		if r.Status == StatusOK || r.Status == StatusFailed {
			r.PeakRSSSelf = selfPeakRSS()
			if !reset {
				r.detail("peak RSS", "could not be reset between scenarios on this system: it is the process's peak so far")
			}
		}
		if err != nil {
			r.Status = StatusFailed
			if r.FirstError == "" || r.Ops > 0 {
				r.FirstError = truncate(err.Error(), 600)
			}
		}
		b.prog.done(r)
	}
	rep.Meta.TotalSeconds = time.Since(began).Seconds()
	rep.Meta.LoadAvgEnd = loadAvg()
	rep.finish()
	return rep, nil
}

// load runs op under the scenario's load and fills r with what it measured.
func (b *runner) load(ctx context.Context, r *Result, lc loadConfig, op opFunc) (*sample, error) {
	lc.warmup, lc.duration = b.cfg.Warmup, b.cfg.Duration
	if lc.workers == 0 {
		lc.workers = b.cfg.Concurrency
	}
	lc.progress = func(elapsed time.Duration, units int64) { b.prog.update(elapsed, b.cfg.Warmup, units) }
	s, err := runLoad(ctx, lc, op)
	if err != nil {
		return nil, err
	}
	r.fill(s)
	if s.window > lc.duration {
		r.detail("window", "extended from %s to %s, until an operation completed in it", lc.duration, s.window.Round(time.Millisecond))
	}
	return s, nil
}

func (b *runner) skip(r *Result, note string) {
	r.Status = StatusSkipped
	r.Note = note
}

func meta(cfg Config, dir string) Meta {
	m := Meta{
		Command: cfg.Command, Date: time.Now().UTC().Truncate(time.Second),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPUModel: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		DurationSeconds: cfg.Duration.Seconds(), WarmupSeconds: cfg.Warmup.Seconds(), Concurrency: cfg.Concurrency,
		ChainLeadSeconds: cfg.ChainLead.Seconds(), MaxTimeoutSeconds: int64(cfg.maxTimeout() / time.Second),
		Price: fmt.Sprintf("%d atomic units of qUSD (0.001) per request", benchPriceAtomic), StoreDir: filepath.Dir(dir),
	}
	m.LoadAvgStart = loadAvg()
	m.Chain = "in-process"
	if cfg.ChainProcess != nil {
		m.Chain = "separate process"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "CGO_ENABLED" {
				m.Cgo = s.Value == "1"
			}
		}
	}
	return m
}

// loadAvg returns the first three fields of /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
