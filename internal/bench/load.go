package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator: one closed loop per worker, every scenario the same. A worker runs its
// operation, records how long it took, and starts the next at once. The first warmup of the run
// is not measured (connections open, caches and JIT compilers warm); then for duration every
// operation that completes is counted, with its latency if it succeeded. Operations still in
// flight at the end are waited for but not counted.

// opFunc performs one operation for worker (0 ≤ worker < workers) and returns how many of the
// scenario's units it did (the authorizations a batch settled); a nil error is a success.
// Throughput and CPU time are per unit, latency per operation.
type opFunc func(ctx context.Context, worker int) (int, error)

// one is an operation that does one unit.
func one(f func(ctx context.Context, worker int) error) opFunc {
	return func(ctx context.Context, w int) (int, error) { return 1, f(ctx, w) }
}

type loadConfig struct {
	warmup, duration time.Duration
	workers          int
	// chainPID and nodePID, when not 0, are the processes of the devnet and of the node peer,
	// whose CPU time over the window is measured as well.
	chainPID, nodePID int
	// started, when set, is told the window before the first operation starts.
	started func(from, to time.Time)
	// progress, when set, is called about five times a second with the time since the start and
	// the number of units the operations that succeeded in the window did so far.
	progress func(elapsed time.Duration, ops int64)
}

// sample is what one load run measured over its window.
type sample struct {
	ops, errs int64 // operations that succeeded and failed in the window
	units     int64 // units the successful operations did
	firstErr  error
	lat       hist
	window    time.Duration
	cpuSelf   time.Duration
	cpuChain  time.Duration
	cpuNode   time.Duration
	// succeeded counts the units of every successful operation of the run, warmup and
	// stragglers included: the on-chain checks compare it with what the chain recorded.
	succeeded int64
}

// maxExtension bounds how long a window is extended waiting for its first operation.
const maxExtension = time.Minute

// drainGrace bounds how long operations in flight at the end of the window are waited for
// before their context is cancelled.
const drainGrace = 30 * time.Second

type workerStats struct {
	lat       hist
	ops, errs int64
	units     int64
	firstErr  error
	succeeded int64
}

func runLoad(ctx context.Context, cfg loadConfig, op opFunc) (*sample, error) {
	if cfg.workers < 1 {
		cfg.workers = 1
	}
	start := time.Now()
	from := start.Add(cfg.warmup)
	to := from.Add(cfg.duration)

	if cfg.started != nil {
		cfg.started(from, to)
	}
	// The window ends at to, or later when no operation has completed in it by then: a window
	// shorter than one operation (a batch of a hundred settlements in a 200ms smoke test) is
	// extended until one completes.
	var end atomic.Int64
	end.Store(to.UnixNano())
	opCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var live, completed atomic.Int64
	stats := make([]workerStats, cfg.workers)
	var wg sync.WaitGroup
	for i := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &stats[i]
			for {
				t0 := time.Now()
				if t0.UnixNano() >= end.Load() || opCtx.Err() != nil {
					return
				}
				n, err := op(opCtx, i)
				t1 := time.Now()
				if err == nil {
					w.succeeded += int64(n)
				}
				if t1.Before(from) || t1.UnixNano() > end.Load() {
					continue
				}
				completed.Add(1)
				if err != nil {
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.ops++
				w.units += int64(n)
				w.lat.record(t1.Sub(t0))
				live.Add(int64(n))
			}
		}()
	}

	s := &sample{window: cfg.duration}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	report := func() {
		if cfg.progress != nil {
			cfg.progress(time.Since(start), live.Load())
		}
	}
	// wait sleeps until t, reporting progress, and reports false if the run was interrupted.
	wait := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		for {
			select {
			case <-timer.C:
				return true
			case <-tick.C:
				report()
			case <-ctx.Done():
				return false
			}
		}
	}
	if wait(from) {
		cpu0, chain0, node0 := selfCPU(), childTime(cfg.chainPID), childTime(cfg.nodePID)
		if wait(to) {
			for completed.Load() == 0 && time.Since(to) < maxExtension {
				next := time.Now().Add(50 * time.Millisecond)
				end.Store(next.UnixNano())
				if cfg.started != nil {
					cfg.started(from, next)
				}
				if !wait(next) {
					break
				}
			}
			s.window = time.Unix(0, end.Load()).Sub(from)
			s.cpuSelf = selfCPU() - cpu0
			s.cpuChain = childTime(cfg.chainPID) - chain0
			s.cpuNode = childTime(cfg.nodePID) - node0
		}
	}
	report()
	select {
	case <-done:
	case <-time.After(time.Until(time.Unix(0, end.Load()).Add(drainGrace))):
		cancel()
		<-done
	case <-ctx.Done():
		cancel()
		<-done
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range stats {
		w := &stats[i]
		s.lat.merge(&w.lat)
		s.ops += w.ops
		s.units += w.units
		s.errs += w.errs
		s.succeeded += w.succeeded
		if s.firstErr == nil {
			s.firstErr = w.firstErr
		}
	}
	return s, nil
}

func childTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, err := childCPU(pid)
	if err != nil {
		return 0
	}
	return d
}
