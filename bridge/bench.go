package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Bench runs `bridge bench`: the same workload over every transport of
// BRIDGE_BENCH_TRANSPORTS, in this process, each in two modes on the same
// broker: raw, the carrier's own client with its strongest delivery
// settings and no protocol, and reliable, the protocol over the service's
// carrier (and, with BRIDGE_BENCH_DURABLE, the protocol with the durable
// producer queue). It shows a progress line on stderr, then writes a table
// or JSON on stdout and, with BRIDGE_BENCH_REPORT, an HTML report. A run
// that fails ends the bench: what was measured before it is still written.
// cfg must have passed ValidateBench.
func Bench(ctx context.Context, cfg Config, env Env) error {
	b := cfg.Bench
	about := describeBench(&b)
	prog := newProgress(env.Stderr)
	fmt.Fprintf(env.Stderr, "bridge bench: %s over %s; sizes %s\n", about.Workload, strings.Join(b.Transports, ", "), sizesText(b.Size))
	rows, runErr := benchAll(ctx, cfg, env.Log, prog)
	prog.finish()
	setRatios(rows)
	var err error
	if b.Format == "json" {
		err = writeBenchJSON(env.Stdout, rows)
	} else {
		err = writeTable(env.Stdout, rows, about)
	}
	if b.Report != "" && len(rows) > 0 {
		if rerr := writeReportFile(b.Report, rows, about); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			fmt.Fprintf(env.Stderr, "bridge bench: report written to %s\n", b.Report)
		}
	}
	return errors.Join(runErr, err)
}

// benchWorkload is what each run does.
type benchWorkload struct {
	count, size, window, rounds int
	rate                        float64
	durable                     bool
}

// warmUp is how many messages each mode moves untimed before its rounds:
// a tenth of the count, at most two windows.
func (w benchWorkload) warmUp() int { return min(max(w.count/10, 1), 2*w.window) }

// benchAll runs every transport and size, in the order configured, and
// returns the rows measured, up to the first failure.
func benchAll(ctx context.Context, cfg Config, log *slog.Logger, prog *progress) ([]benchRow, error) {
	b := cfg.Bench
	var rows []benchRow
	for _, name := range b.Transports {
		t, err := openBenchTarget(ctx, cfg, name, log)
		if err != nil {
			return rows, fmt.Errorf("bench %s: %w", name, err)
		}
		for _, size := range b.Size {
			w := benchWorkload{count: b.countFor(size), size: size, window: b.Window, rounds: b.Rounds, rate: b.Rate, durable: b.Durable}
			rs, err := benchSize(ctx, t, w, prog, log)
			rows = append(rows, rs...)
			if err != nil {
				t.close()
				return rows, fmt.Errorf("bench %s, %s: %w", name, sizeText(size), err)
			}
		}
		t.close()
	}
	return rows, nil
}

// benchSize runs every mode of one transport and size. The count is split
// into rounds, and the modes take turns, each round starting with the next
// mode (raw, reliable; then reliable, raw), so that neither always runs
// first or on a warmer or busier machine. Each mode keeps its pipe
// across rounds: connecting is not measured.
func benchSize(ctx context.Context, t *benchTarget, w benchWorkload, prog *progress, log *slog.Logger) ([]benchRow, error) {
	stream := fmt.Sprintf("bench-%s-%d-%s", t.name, w.size, strconv.FormatInt(time.Now().UnixNano(), 36))
	warm := w.warmUp()
	modes := []*modeRun{newModeRun(modeRaw, warm+w.count), newModeRun(modeReliable, warm+w.count)}
	streams := map[string]string{modeRaw: stream + "-raw", modeReliable: stream, modeDurable: stream + "-durable"}
	var durableDir string
	if w.durable {
		modes = append(modes, newModeRun(modeDurable, warm+w.count))
		var err error
		if durableDir, err = os.MkdirTemp("", "bridge-bench-durable-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(durableDir) // after the pipes are closed: defers run last first
	}
	defer func() {
		for _, m := range modes {
			if m.pipe == nil {
				continue
			}
			m.pipe.close()
			if m.mode != modeRaw && t.car.deleteStream != nil {
				fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := t.car.deleteStream(fctx, streams[m.mode]); err != nil {
					log.Warn("bench: removing a stream's queues or topics", "stream", streams[m.mode], "err", err)
				}
				cancel()
			}
		}
	}()
	for _, m := range modes {
		var err error
		switch m.mode {
		case modeRaw:
			m.pipe, err = t.raw(ctx, streams[m.mode], w.size, m.deliver)
		case modeReliable:
			m.pipe, err = reliablePipe(ctx, t.car, t.cfg, streams[m.mode], "", log, m.deliver)
		case modeDurable:
			m.pipe, err = reliablePipe(ctx, t.car, t.cfg, streams[m.mode], durableDir, log, m.deliver)
		}
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", m.mode, err)
		}
	}
	for _, m := range modes {
		label := fmt.Sprintf("%s %s %s, warm-up", t.name, sizeText(w.size), m.mode)
		if err := m.warmUp(ctx, warm, w.size, w.rate, prog, label); err != nil {
			return nil, fmt.Errorf("%s, warm-up: %w", m.mode, err)
		}
	}
	first := warm + 1
	for r := range w.rounds {
		n := w.count / w.rounds
		if r == w.rounds-1 {
			n = w.count - n*(w.rounds-1)
		}
		for k := range modes {
			m := modes[(k+r)%len(modes)]
			label := fmt.Sprintf("%s %s %s, round %d/%d", t.name, sizeText(w.size), m.mode, r+1, w.rounds)
			if err := m.measure(ctx, first, n, w.size, w.rate, prog, label); err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", m.mode, r+1, err)
			}
		}
		first += n
	}
	var rows []benchRow
	var errs []error
	for _, m := range modes {
		r := m.row(t, w)
		rows = append(rows, r)
		if m.mode != modeRaw && (r.Lost > 0 || m.tally.duplicates.Load() > 0) {
			errs = append(errs, fmt.Errorf("%s: %d messages lost and %d delivered twice: reliable delivery must deliver each once", m.mode, r.Lost, m.tally.duplicates.Load()))
		}
	}
	return rows, errors.Join(errs...)
}

func sizesText(sizes []int) string {
	s := make([]string, len(sizes))
	for i, n := range sizes {
		s[i] = sizeText(n)
	}
	return strings.Join(s, ", ")
}
