package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quidpay/quid/internal/bench"
)

// TestBenchSmoke runs every scenario of `quid bench` for 200ms each: it checks that they all run
// and report, not how fast. The TypeScript peer needs interop's node_modules; without them it is
// skipped, which is a failure when CI is set (the interop tests' convention).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole bench")
	}
	t.Parallel()
	dir := t.TempDir()
	jsonFile, chartFile := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "--duration", "200ms", "--concurrency", "4", "--json", jsonFile, "--chart", chartFile}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	t.Logf("stdout:\n%s", out.String())

	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("--json: %v", err)
	}
	if rep.Meta.Concurrency != 4 || rep.Meta.DurationSeconds != 0.2 || rep.Meta.Chain != "separate process" || rep.Meta.NumCPU < 1 {
		t.Errorf("meta: %+v", rep.Meta)
	}
	status := map[string]*bench.Result{}
	for _, r := range rep.Scenarios {
		status[r.ID] = r
	}
	for _, id := range bench.Scenarios() {
		r := status[id]
		if r == nil {
			t.Errorf("scenario %s missing from the report", id)
			continue
		}
		switch id {
		case "go-sdk":
			if r.Status != bench.StatusSkipped || r.Note == "" {
				t.Errorf("%s: %s, want skipped with a note", id, r.Status)
			}
		case "ts-peer":
			if r.Status == bench.StatusSkipped {
				if os.Getenv("CI") != "" {
					t.Errorf("the TypeScript peer was skipped and CI is set: %s", r.Note)
				} else {
					t.Logf("the TypeScript peer was skipped: %s", r.Note)
				}
				continue
			}
			// The peer's correctness is the interop suite's job; here a run that failed must at
			// least be reported as such, with the reason.
			if r.Status != bench.StatusOK {
				if r.Note == "" {
					t.Errorf("the TypeScript peer failed without a reason: %+v", r)
				}
				t.Logf("the TypeScript peer did not complete: %s", r.Note)
				continue
			}
			fallthrough
		default:
			if r.Status != bench.StatusOK || r.Ops == 0 || r.PerSecond <= 0 || r.P50 <= 0 || r.P99 < r.P50 || r.CPUPerOp <= 0 {
				t.Errorf("%s: %+v", id, r)
			}
			if id != "unpaid" && r.VsUnpaid == nil {
				t.Errorf("%s has no ratio to the unpaid baseline", id)
			}
		}
	}
	// The chain scenarios ran their devnet in a chain process, whose CPU and memory are read.
	for _, id := range []string{"exact", "exact-deferred", "settle-facilitator", "settle-batch"} {
		if r := status[id]; r != nil && (r.CPUChain <= 0 || r.PeakRSSChain <= 0) {
			t.Errorf("%s: chain CPU %v s, chain RSS %d", id, r.CPUChain, r.PeakRSSChain)
		}
	}
	if e := status["exact"]; e != nil && len(e.Phases) == 0 {
		t.Error("exact has no per-phase numbers")
	}
	if len(rep.Targets) != 9 {
		t.Errorf("%d targets", len(rep.Targets))
	}

	// The table is on stdout; progress, one line per scenario, on stderr (not a terminal here).
	for _, want := range []string{"ops/s", "×unpaid", "quid x402 exact, end to end", "Targets:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if n := strings.Count(errOut.String(), "quid bench: ["); n != len(bench.Scenarios()) {
		t.Errorf("%d progress lines on stderr, want %d:\n%s", n, len(bench.Scenarios()), errOut.String())
	}

	svg, err := os.ReadFile(chartFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("--chart is not well-formed XML: %v", err)
		}
	}
}

func TestBenchFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "--duration", "0s"},
		{"bench", "--concurrency", "-1"},
		{"bench", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--only", "nope"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `unknown scenario "nope"`) {
		t.Errorf("--only nope: exit %d: %s", code, errOut.String())
	}
}
