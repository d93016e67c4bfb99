package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// The chart: one row per scenario and three panels on logarithmic axes, because the scenarios
// span five orders of magnitude: throughput, latency (p50 bar, p99 whisker), and CPU time per
// operation (the bench process and node peer; the chain process apart). Skipped and failed
// scenarios keep their row with the reason. The targets are listed below.

const (
	svgLabelW  = 330
	svgPanelW  = 320 // an axis and room for its value labels
	svgAxisW   = 190
	svgGap     = 16
	svgRowH    = 30
	svgTop     = 96
	svgMarginR = 8
)

// seriesColor picks a row's colour by what it measures.
func seriesColor(r *Result) string {
	switch {
	case r.ID == "unpaid":
		return "#4c9a5a"
	case r.ID == "ts-peer" || r.ID == "go-sdk":
		return "#d9822b"
	case r.ID == "floor" || r.ID == "verify-path":
		return "#7a7f87"
	case strings.HasPrefix(r.ID, "settle-"):
		return "#8a63b8"
	}
	return "#2f6db5"
}

// logAxis maps positive values onto [x0, x0+w] by decades.
type logAxis struct {
	lo, hi float64 // powers of ten
	x0, w  float64
}

func newLogAxis(values []float64, x0, w float64) logAxis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	a := logAxis{lo: math.Pow(10, math.Floor(math.Log10(lo))), hi: math.Pow(10, math.Ceil(math.Log10(hi))), x0: x0, w: w}
	// A decade more below when the smallest value sits on the axis's first decade, so that its
	// bar still shows.
	if lo/a.lo < 2 {
		a.lo /= 10
	}
	if a.hi <= a.lo {
		a.hi = a.lo * 10
	}
	return a
}

func (a logAxis) x(v float64) float64 {
	if v <= a.lo {
		return a.x0
	}
	return a.x0 + a.w*math.Log10(v/a.lo)/math.Log10(a.hi/a.lo)
}

func (a logAxis) decades() []float64 {
	var out []float64
	for v := a.lo; v <= a.hi*1.0001; v *= 10 {
		out = append(out, v)
	}
	return out
}

func esc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

// siShort writes a count for an axis: 1, 10, 100, 1k, 10k, 1M.
func siShort(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

// durShort writes microseconds for an axis: 10µs, 1ms, 1s.
func durShort(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%gs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%gms", us/1e3)
	}
	return fmt.Sprintf("%gµs", us)
}

// WriteSVG draws the report as an SVG chart.
func (rep *Report) WriteSVG(w io.Writer) error {
	rows := rep.Scenarios
	panelX := func(i int) float64 { return float64(svgLabelW + i*(svgPanelW+svgGap)) }
	width := int(panelX(3)) - svgGap + svgMarginR
	bottom := svgTop + len(rows)*svgRowH
	legendY := bottom + 34
	targetsY := legendY + 34
	height := targetsY + 22*len(rep.Targets) + 40

	var rates, lats, cpus []float64
	for _, r := range rows {
		if !ok(r) {
			continue
		}
		rates = append(rates, r.PerSecond)
		lats = append(lats, r.P50, r.P99)
		cpus = append(cpus, r.CPUPerOp)
		if r.ChainCPUPerOp > 0 {
			cpus = append(cpus, r.ChainCPUPerOp)
		}
	}
	axes := []logAxis{
		newLogAxis(rates, panelX(0), svgAxisW),
		newLogAxis(lats, panelX(1), svgAxisW),
		newLogAxis(cpus, panelX(2), svgAxisW),
	}
	titles := []string{"Throughput, ops/s (log)", "Latency p50 ▮ and p99 ┤ (log)", "CPU µs per op (log)"}
	ticks := []func(float64) string{siShort, durShort, func(v float64) string { return siShort(v) }}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	m := rep.Meta
	fmt.Fprintf(&b, `<text x="16" y="28" font-size="18" font-weight="bold" fill="#1d2330">quid bench: the cost of a paid request, measured in one run</text>`+"\n")
	sub := fmt.Sprintf("%s · %s · %d CPUs · %s · %d workers · %gs per scenario · %s", m.Date.Format("2006-01-02"), m.CPUModel, m.NumCPU, m.GoVersion, m.Concurrency, m.DurationSeconds, m.Command)
	fmt.Fprintf(&b, `<text x="16" y="50" fill="#4a5160">%s</text>`+"\n", esc(sub))

	for i, a := range axes {
		x0 := panelX(i)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-weight="bold" fill="#1d2330">%s</text>`+"\n", x0, svgTop-26, esc(titles[i]))
		for _, v := range a.decades() {
			x := a.x(v)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e6eb"/>`+"\n", x, svgTop-6, x, bottom)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10" fill="#6b7280">%s</text>`+"\n", x, svgTop-10, esc(ticks[i](v)))
		}
	}

	for n, r := range rows {
		y := float64(svgTop + n*svgRowH)
		if n%2 == 1 {
			fmt.Fprintf(&b, `<rect x="8" y="%.1f" width="%d" height="%d" fill="#f6f7f9"/>`+"\n", y, width-16, svgRowH)
		}
		mid := y + svgRowH/2
		label := r.Scenario + "  " + r.Name
		fmt.Fprintf(&b, `<text x="16" y="%.1f" dominant-baseline="middle" fill="#1d2330">%s</text>`+"\n", mid, esc(label))
		if !ok(r) {
			why := "skipped"
			if r.Status == StatusFailed {
				why = "failed"
			}
			note := r.Note
			if r.Status == StatusFailed {
				note = r.FirstError
			}
			note = strings.ReplaceAll(note, "\n", " ")
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle" font-style="italic" fill="#8a8f98">%s: %s</text>`+"\n",
				panelX(0), mid, why, esc(truncate(note, 120)))
			continue
		}
		color := seriesColor(r)
		barH, barY := 14.0, mid-7

		// Throughput, with the ratio to the unpaid baseline.
		a := axes[0]
		x := a.x(r.PerSecond)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", a.x0, barY, math.Max(x-a.x0, 1), barH, color)
		txt := num(r.PerSecond)
		if r.VsUnpaid != nil {
			txt += "  (" + ratio(r.VsUnpaid.Throughput) + ")"
		}
		b.WriteString(valueLabel(x, mid, a, txt))

		// Latency: p50 bar, p99 whisker.
		a = axes[1]
		x50, x99 := a.x(r.P50), a.x(r.P99)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", a.x0, barY, math.Max(x50-a.x0, 1), barH, color)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", x50, mid, x99, mid, color)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", x99, barY, x99, barY+barH, color)
		b.WriteString(valueLabel(x99, mid, a, dur(r.P50)+" / "+dur(r.P99)))

		// CPU: the payment stack and load generator; the chain apart, lighter, below.
		a = axes[2]
		stackH := barH
		if r.ChainCPUPerOp > 0 {
			stackH = 8
		}
		x = a.x(r.CPUPerOp)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", a.x0, barY, math.Max(x-a.x0, 1), stackH, color)
		txt = cpuNum(r.CPUPerOp)
		end := x
		if r.ChainCPUPerOp > 0 {
			xc := a.x(r.ChainCPUPerOp)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="6" fill="%s" fill-opacity="0.35"/>`+"\n", a.x0, barY+stackH, math.Max(xc-a.x0, 1), color)
			txt += " + chain " + cpuNum(r.ChainCPUPerOp)
			end = math.Max(x, xc)
		}
		b.WriteString(valueLabel(end, mid, a, txt))
	}

	// Legend.
	lx := 16.0
	for _, l := range []struct{ color, text string }{
		{"#7a7f87", "floor (CPU only)"}, {"#4c9a5a", "unpaid baseline"}, {"#2f6db5", "quid"},
		{"#d9822b", "TypeScript peer"}, {"#8a63b8", "settlement on the devnet"},
	} {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, legendY-10, l.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#1d2330">%s</text>`+"\n", lx+17, legendY, esc(l.text))
		lx += 17 + float64(len(l.text))*6.6 + 22
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#4a5160">Lighter CPU bar: the devnet's own process. Ratios (×) are to the unpaid baseline.</text>`+"\n", lx, legendY)

	// Targets.
	if len(rep.Targets) > 0 {
		fmt.Fprintf(&b, `<text x="16" y="%d" font-weight="bold" fill="#1d2330">Targets</text>`+"\n", targetsY)
		for i, t := range rep.Targets {
			mark, color := "–", "#8a8f98"
			if t.Met != nil {
				mark, color = "✗", "#c0392b"
				if *t.Met {
					mark, color = "✓", "#2e7d32"
				}
			}
			y := targetsY + 22*(i+1)
			fmt.Fprintf(&b, `<text x="24" y="%d" font-weight="bold" fill="%s">%s</text>`+"\n", y, color, mark)
			fmt.Fprintf(&b, `<text x="42" y="%d" fill="#1d2330">%s: %s (goal %s)</text>`+"\n", y, esc(t.Name), esc(t.Measured), esc(t.Goal))
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// valueLabel writes txt just right of x, in the room the panel keeps for it.
func valueLabel(x, mid float64, a logAxis, txt string) string {
	return fmt.Sprintf(`<text x="%.1f" y="%.1f" dominant-baseline="middle" font-size="11" fill="#1d2330">%s</text>`+"\n", x+6, mid, esc(txt))
}
