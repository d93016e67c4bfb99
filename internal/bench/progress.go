package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// progress shows where a run is: on a terminal a bar redrawn in place, otherwise one line per
// finished scenario.
type progress struct {
	w     io.Writer
	term  bool
	n     int
	total time.Duration

	mu    sync.Mutex
	i     int
	name  string
	shown int // runes of the line on screen
	began time.Time
}

func (p *progress) start(i int, name string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.i, p.name, p.began = i, name, time.Now()
	if p.term {
		p.draw(fmt.Sprintf("[%d/%d] %s: starting…", i, p.n, name))
	}
}

// note prints a message on its own line, keeping the bar below it.
func (p *progress) note(msg string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term {
		p.draw("")
		fmt.Fprintf(p.w, "\r%s\n", msg)
		p.shown = 0
		return
	}
	fmt.Fprintln(p.w, msg)
}

// update redraws the bar: elapsed of the scenario's warmup plus window, and the rate so far.
func (p *progress) update(elapsed, warmup time.Duration, units int64) {
	if p.w == nil || !p.term {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	frac := min(max(float64(elapsed)/float64(p.total), 0), 1)
	const width = 24
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	rate := "warming up"
	if elapsed > warmup+300*time.Millisecond {
		rate = fmt.Sprintf("%s ops/s", num(float64(units)/(elapsed-warmup).Seconds()))
	}
	p.draw(fmt.Sprintf("[%d/%d] %s ▕%s▏ %3.0f%%  %s", p.i, p.n, p.name, bar, 100*frac, rate))
}

func (p *progress) done(r *Result) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var msg string
	switch r.Status {
	case StatusSkipped:
		msg = "skipped"
	case StatusFailed:
		msg = "FAILED: " + truncate(r.FirstError, 200)
	default:
		msg = fmt.Sprintf("%s ops/s, p50 %s, p99 %s, %s CPU µs/op", num(r.PerSecond), dur(r.P50), dur(r.P99), sig3(r.CPUPerOp))
		if r.Errors > 0 {
			msg += fmt.Sprintf(", %d errors", r.Errors)
		}
	}
	line := fmt.Sprintf("[%d/%d] %s: %s (%s)", p.i, p.n, r.Name, msg, time.Since(p.began).Round(100*time.Millisecond))
	if p.term {
		p.draw("")
		fmt.Fprintf(p.w, "\r%s\n", line)
		p.shown = 0
		return
	}
	fmt.Fprintln(p.w, "quid bench: "+line)
}

func (p *progress) clear() {
	if p.w != nil && p.term {
		p.mu.Lock()
		p.draw("")
		fmt.Fprint(p.w, "\r")
		p.mu.Unlock()
	}
}

// draw replaces the line on screen with s.
func (p *progress) draw(s string) {
	n := utf8.RuneCountInString(s)
	pad := ""
	if p.shown > n {
		pad = strings.Repeat(" ", p.shown-n)
	}
	fmt.Fprintf(p.w, "\r%s%s", s, pad)
	p.shown = n
}

// ask calls f (a question on the terminal) with the bar out of the way.
func (p *progress) ask(f func() bool) bool {
	p.mu.Lock()
	if p.w != nil && p.term {
		p.draw("")
		fmt.Fprint(p.w, "\r")
		p.shown = 0
	}
	p.mu.Unlock()
	return f()
}
