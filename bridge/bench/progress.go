package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/bridge-mq/bridge/bridge/internal/workload"
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
	if workload.IsTerminal(w) {
		p.every, p.tty = 200*time.Millisecond, true
	}
	return p
}

// follow shows m's round, which started at start, until stop is called.
func (p *progress) follow(label string, m *modeRun, start time.Time) (stop func()) {
	total := int64(m.tally.Count())
	return p.followCounts(label, func() (int64, int64) { return m.tally.Distinct(), total }, start)
}

// followWork shows a work-pulling pass, which started at start, until stop
// is called.
func (p *progress) followWork(label string, t *workTally, start time.Time) (stop func()) {
	return p.followCounts(label, func() (int64, int64) {
		got, _, _, _ := t.snapshot()
		return int64(got), int64(t.target)
	}, start)
}

// followCounts shows what counts says (messages in, of how many) until
// stop is called.
func (p *progress) followCounts(label string, counts func() (got, total int64), start time.Time) (stop func()) {
	base, _ := counts()
	line := func() {
		got, total := counts()
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
