package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/quidpay/quid/internal/bench"
)

// benchChainEnv, when set in the environment of `quid bench`, makes it the bench's chain process
// (bench.ServeChain) with the lead it holds, instead of running the bench.
const benchChainEnv = "QUID_BENCH_CHAIN"

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if v := os.Getenv(benchChainEnv); v != "" {
		lead, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s=%q: %v", benchChainEnv, v, err)
		}
		return bench.ServeChain(ctx, lead, os.Stdin, stdout)
	}
	fs := newFlags("bench", stderr)
	duration := fs.Duration("duration", bench.DefaultDuration, "measured window of each scenario; each also warms up for a fifth of it (at most 2s)")
	concurrency := fs.Int("concurrency", bench.DefaultConcurrency, "load generator workers, the same for every scenario")
	jsonFile := fs.String("json", "", "also write the results as JSON to `FILE`")
	chartFile := fs.String("chart", "", "also draw the results as an SVG chart in `FILE`")
	only := fs.String("only", "", "run only these comma-separated scenarios: "+strings.Join(bench.Scenarios(), ", "))
	install := fs.Bool("install-peers", false, "install the TypeScript peer's pinned npm packages (npm ci --prefix interop) when missing, without asking")
	interop := fs.String("interop", "", "the interop directory of a quid checkout (default: found from the working directory)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the bench process (load generator and quid's stack, not the chain or node) to `FILE`")
	lead := fs.Duration("chain-lead", bench.DefaultChainLead, "how far the devnet's block time may run ahead of the clock (devnet MaxTimestampLead); the default never binds, so the devnet seals blocks as fast as it can")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: quid bench [flags]\n\nMeasures, in one run on this machine, what a paid request costs: the ECDSA floor, an unpaid\nbaseline, quid's x402 exact end to end, the TypeScript x402 stack on the same devnet, and\nsettlement on chain. Prints a table with each scenario's ratio to the unpaid baseline.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "quid bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *duration <= 0 || *concurrency <= 0 {
		fmt.Fprintln(stderr, "quid bench: --duration and --concurrency must be positive")
		return errUsage
	}
	cfg := bench.Config{
		Duration:     *duration,
		Concurrency:  *concurrency,
		ChainLead:    *lead,
		Interop:      *interop,
		InstallPeers: *install,
		Command:      strings.TrimSpace("quid bench " + strings.Join(args, " ")),
		Progress:     stderr,
		Terminal:     isTerminal(stderr),
		ChainProcess: chainProcess,
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	if cfg.Terminal && isTerminal(os.Stdin) {
		cfg.AskInstall = func() bool {
			fmt.Fprint(stderr, "The TypeScript peer needs the npm packages pinned in interop/package-lock.json.\nInstall them now with `npm ci --prefix interop`? [y/N] ")
			line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
			answer := strings.ToLower(strings.TrimSpace(line))
			return answer == "y" || answer == "yes"
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonFile != "" {
		if err := writeFile(*jsonFile, rep.WriteJSON); err != nil {
			return err
		}
	}
	if *chartFile != "" {
		if err := writeFile(*chartFile, rep.WriteSVG); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range rep.Scenarios {
		if r.Status == bench.StatusFailed {
			failed = append(failed, r.ID)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d scenarios failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// chainProcess returns the command of the bench's chain process: this executable again, as
// `quid bench` with benchChainEnv set. QUID_TEST_MAIN makes the test binary, which doubles as
// quid when it is set (crash_test.go), run it too.
func chainProcess(lead time.Duration) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench")
	cmd.Env = append(os.Environ(), benchChainEnv+"="+lead.String(), "QUID_TEST_MAIN=1")
	return cmd, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
