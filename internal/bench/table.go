package bench

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteTable writes the results as a plain-text table, then what each row's numbers cover, the
// per-phase numbers, skipped scenarios and the targets.
func (rep *Report) WriteTable(w io.Writer) error {
	header := []string{"#", "scenario", "ops/s", "×unpaid", "p50", "p99", "CPU µs/op", "×unpaid", "chain µs/op", "RSS MiB", "chain MiB", "errors"}
	right := []bool{false, false, true, true, true, true, true, true, true, true, true, true}
	rows := [][]string{header}
	for _, r := range rep.Scenarios {
		row := []string{r.Scenario, r.Name}
		switch {
		case r.Status == StatusSkipped:
			row = append(row, "skipped", "", "", "", "", "", "", "", "", "")
		case r.Status == StatusFailed && r.Ops == 0:
			row = append(row, "failed", "", "", "", "", "", "", "", "", fmt.Sprint(r.Errors))
		default:
			tr, cr := "-", "-"
			if r.VsUnpaid != nil {
				tr, cr = ratio(r.VsUnpaid.Throughput), ratio(r.VsUnpaid.CPU)
			} else if r.ID == "unpaid" {
				tr, cr = "1×", "1×"
			}
			rss := mib(r.PeakRSSSelf)
			if r.PeakRSSNode > 0 {
				rss += "+" + mib(r.PeakRSSNode)
			}
			chain := "-"
			if r.CPUChain > 0 {
				chain = cpuNum(r.ChainCPUPerOp)
			}
			row = append(row, num(r.PerSecond), tr, dur(r.P50), dur(r.P99), cpuNum(r.CPUPerOp), cr, chain, rss, mib(r.PeakRSSChain), fmt.Sprint(r.Errors))
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for n, row := range rows {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if right[i] {
				b.WriteString(pad + c)
			} else if i < len(row)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		trimmed := strings.TrimRight(b.String(), " ")
		b.Reset()
		b.WriteString(trimmed + "\n")
		if n == 0 {
			total := len(widths)*2 - 2
			for _, wd := range widths {
				total += wd
			}
			b.WriteString(strings.Repeat("─", total) + "\n")
		}
	}

	b.WriteString("\nWhat the numbers cover:\n")
	for _, r := range rep.Scenarios {
		fmt.Fprintf(&b, "  %-3s %s", r.Scenario, r.Name)
		switch r.Status {
		case StatusSkipped:
			fmt.Fprintf(&b, ": SKIPPED. %s\n", r.Note)
			continue
		case StatusFailed:
			fmt.Fprintf(&b, ": FAILED. %s\n", r.FirstError)
			continue
		}
		fmt.Fprintf(&b, ": one op = %s.", r.Unit)
		if r.Processes != "" {
			fmt.Fprintf(&b, " CPU and RSS: %s.", r.Processes)
		}
		if r.Note != "" {
			fmt.Fprintf(&b, " %s", r.Note)
		}
		b.WriteString("\n")
		for _, p := range r.Phases {
			fmt.Fprintf(&b, "        %-30s %5.2f/op  p50 %-9s p99 %-9s mean %s\n", p.Name, p.PerOp, dur(p.P50), dur(p.P99), dur(p.Mean))
		}
		for _, d := range r.Details {
			fmt.Fprintf(&b, "        %s: %s\n", d.Name, d.Value)
		}
		if r.Errors > 0 {
			fmt.Fprintf(&b, "        %d errors in the window; first: %s\n", r.Errors, r.FirstError)
		}
	}

	if len(rep.Targets) > 0 {
		b.WriteString("\nTargets:\n")
		for _, t := range rep.Targets {
			verdict := "n/a "
			if t.Met != nil {
				verdict = "MISS"
				if *t.Met {
					verdict = "met "
				}
			}
			fmt.Fprintf(&b, "  [%s] %s: %s (goal %s)\n", verdict, t.Name, t.Measured, t.Goal)
			if t.Note != "" {
				fmt.Fprintf(&b, "         %s\n", t.Note)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
