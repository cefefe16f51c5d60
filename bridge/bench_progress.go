package bridge

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress shows how a bench is going, on stderr: one line rewritten in
// place on a terminal, otherwise a line a second and one at the end of
// each round.
type progress struct {
	w     io.Writer
	every time.Duration
	tty   bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, every: time.Second}
	if isTerminal(w) {
		p.every, p.tty = 200*time.Millisecond, true
	}
	return p
}

// isTerminal reports whether w is a terminal, where a progress line can be
// rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// follow shows m's round, which started at start, until stop is called.
func (p *progress) follow(label string, m *modeRun, start time.Time) (stop func()) {
	base := m.tally.distinct.Load()
	total := len(m.tally.seen) - 1
	line := func() {
		got := m.tally.distinct.Load()
		rate := float64(got-base) / max(time.Since(start).Seconds(), 1e-6)
		text := fmt.Sprintf("bench %s: %d/%d messages in, %.0f msgs/s", label, got, total, rate)
		if p.tty {
			fmt.Fprintf(p.w, "\r%-100s", text)
		} else {
			fmt.Fprintln(p.w, text)
		}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				line()
			case <-done:
				line()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// finish ends the line a terminal shows.
func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
