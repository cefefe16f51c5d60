package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// Run runs `bridge bench`: the same workload over every transport of
// BRIDGE_BENCH_TRANSPORTS, in this process, each in two modes on the same
// broker: raw, the carrier's own client with its strongest delivery
// settings and no protocol, and reliable, the protocol over the service's
// carrier (and, with BRIDGE_BENCH_DURABLE, the protocol with the durable
// producer queue; with BRIDGE_BENCH_SEALED, the protocol with sealed frames
// beside it unsealed). Without BRIDGE_BENCH_SEALED the protocol's frames
// are sealed as the service seals them: when BRIDGE_SECRET is set. It shows a progress line on stderr, then writes a table
// or JSON on stdout and, with BRIDGE_BENCH_REPORT, an HTML report. A run
// that fails ends the bench: what was measured before it is still written.
// b must have passed Validate with svc.
func Run(ctx context.Context, svc bridge.Config, b Config, env bridge.Env) error {
	if b.Sealed && !svc.Sealed() {
		svc.Secret = randomSecret() // the sealed mode's, for this run
	}
	stopProfile, err := startCPUProfile(b.CPUProfile)
	if err != nil {
		return err
	}
	about := describeBench(&b)
	prog := newProgress(env.Stderr)
	fmt.Fprintf(env.Stderr, "bridge bench: %s over %s; sizes %s\n", about.Workload, strings.Join(b.Transports, ", "), sizesText(b.Size))
	run := runAll
	if b.Scenario == scenarioWorkPulling {
		run = runWorkPulling
	}
	rows, runErr := run(ctx, svc, b, env.Log, prog)
	runErr = errors.Join(runErr, stopProfile())
	prog.finish()
	report.SetRatios(rows)
	if b.Format == "json" {
		err = report.WriteJSON(env.Stdout, rows)
	} else {
		err = report.WriteTable(env.Stdout, rows, about)
	}
	if b.Report != "" && len(rows) > 0 {
		if rerr := report.WriteHTMLFile(b.Report, rows, about); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			fmt.Fprintf(env.Stderr, "bridge bench: report written to %s\n", b.Report)
		}
	}
	return errors.Join(runErr, err)
}

// plan is what each run does.
type plan struct {
	count, size, window, rounds int
	rate                        float64
	durable, sealed             bool
	headers                     bool
	traceSample                 float64
}

// warmUp is how many messages each mode moves untimed before its rounds:
// a tenth of the count, at most two windows.
func (w plan) warmUp() int { return min(max(w.count/10, 1), 2*w.window) }

// runAll runs every transport and size, in the order configured, and
// returns the rows measured, up to the first failure.
func runAll(ctx context.Context, svc bridge.Config, b Config, log *slog.Logger, prog *progress) ([]report.Row, error) {
	var rows []report.Row
	for _, name := range b.Transports {
		tr, _ := transportNamed(name) // Validate checked the names
		t, err := openTarget(ctx, svc, b, tr, log)
		if err != nil {
			return rows, fmt.Errorf("bench %s: %w", name, err)
		}
		for _, size := range b.Size {
			w := plan{count: b.countFor(size), size: size, window: b.window(), rounds: b.Rounds, rate: b.Rate, durable: b.Durable, sealed: b.Sealed,
				headers: b.Headers, traceSample: b.TraceSample}
			rs, err := runSize(ctx, t, w, prog, log)
			rows = append(rows, rs...)
			if err != nil {
				t.close()
				return rows, fmt.Errorf("bench %s, %s: %w", name, report.SizeText(size), err)
			}
		}
		t.close()
	}
	return rows, nil
}

// runSize runs every mode of one transport and size. The count is split
// into rounds, and the modes take turns, each round starting with the next
// mode (raw, reliable; then reliable, raw), so that neither always runs
// first or on a warmer or busier machine. Each mode keeps its pipe
// across rounds: connecting is not measured.
func runSize(ctx context.Context, t *target, w plan, prog *progress, log *slog.Logger) ([]report.Row, error) {
	stream := fmt.Sprintf("bench-%s-%d-%s", t.name, w.size, strconv.FormatInt(time.Now().UnixNano(), 36))
	warm := w.warmUp()
	modes := []*modeRun{newModeRun(report.Raw, warm+w.count), newModeRun(report.Reliable, warm+w.count)}
	streams := map[string]string{report.Raw: stream + "-raw", report.Reliable: stream, report.Durable: stream + "-durable", report.Sealed: stream + "-sealed",
		report.Headers: stream + "-headers", report.Traced: stream + "-traced"}
	// The protocol's modes as the service runs them; beside the sealed
	// mode, the others unsealed, so that the two differ in sealing only.
	protocolCfg := t.cfg
	if w.sealed {
		modes = append(modes, newModeRun(report.Sealed, warm+w.count))
		protocolCfg = t.cfg.Unsealed()
	}
	var durableDir string
	if w.durable {
		modes = append(modes, newModeRun(report.Durable, warm+w.count))
		var err error
		if durableDir, err = os.MkdirTemp("", "bridge-bench-durable-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(durableDir) // after the pipes are closed: defers run last first
	}
	if w.headers {
		modes = append(modes, newModeRun(report.Headers, warm+w.count))
	}
	if w.traceSample > 0 {
		modes = append(modes, newModeRun(report.Traced, warm+w.count))
	}
	defer func() {
		for _, m := range modes {
			if m.pipe == nil {
				continue
			}
			m.pipe.close()
			if m.mode != report.Raw {
				fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := t.car.DeleteStream(fctx, streams[m.mode]); err != nil {
					log.Warn("bench: removing a stream's queues or topics", "stream", streams[m.mode], "err", err)
				}
				cancel()
			}
		}
	}()
	for _, m := range modes {
		err := labelled(ctx, t, w.size, m.mode, func(ctx context.Context) (err error) {
			m.pipe, err = m.open(ctx, t, w, protocolCfg, streams[m.mode], durableDir, log)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", m.mode, err)
		}
	}
	for _, m := range modes {
		label := fmt.Sprintf("%s %s %s, warm-up", t.name, report.SizeText(w.size), m.mode)
		err := labelled(ctx, t, w.size, m.mode, func(ctx context.Context) error {
			return m.warmUp(ctx, warm, w.size, w.rate, prog, label)
		})
		if err != nil {
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
			label := fmt.Sprintf("%s %s %s, round %d/%d", t.name, report.SizeText(w.size), m.mode, r+1, w.rounds)
			err := labelled(ctx, t, w.size, m.mode, func(ctx context.Context) error {
				return m.measure(ctx, first, n, w.size, w.rate, prog, label)
			})
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", m.mode, r+1, err)
			}
		}
		first += n
	}
	var rows []report.Row
	var errs []error
	for _, m := range modes {
		r := m.row(t, w)
		rows = append(rows, r)
		if m.mode != report.Raw && (r.Lost > 0 || m.tally.Duplicates() > 0) {
			errs = append(errs, fmt.Errorf("%s: %d messages lost and %d delivered twice: reliable delivery must deliver each once", m.mode, r.Lost, m.tally.Duplicates()))
		}
	}
	return rows, errors.Join(errs...)
}

// randomSecret is 32 random bytes in hex: the sealed mode's secret when
// BRIDGE_SECRET is unset, an embedded server's token.
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sizesText(sizes []int) string {
	s := make([]string, len(sizes))
	for i, n := range sizes {
		s[i] = report.SizeText(n)
	}
	return strings.Join(s, ", ")
}

// open opens the mode's pipe on stream: protocolCfg is t's configuration
// as the protocol's modes use it (unsealed when the sealed mode runs beside
// them); durableDir holds the durable mode's queue.
func (m *modeRun) open(ctx context.Context, t *target, w plan, protocolCfg bridge.Config, stream, durableDir string, log *slog.Logger) (*pipe, error) {
	switch m.mode {
	case report.Raw:
		return t.raw(ctx, stream, w.size, m.deliver)
	case report.Durable:
		return reliablePipe(ctx, t.car, protocolCfg, stream, durableDir, log, m)
	case report.Sealed:
		return reliablePipe(ctx, t.car, t.cfg, stream, "", log, m)
	case report.Headers:
		return reliablePipe(ctx, t.car, protocolCfg, stream, "", log, m, benchHeaders())
	case report.Traced:
		return tracedPipe(ctx, t.car, protocolCfg, stream, w.traceSample, log, m)
	default:
		return reliablePipe(ctx, t.car, protocolCfg, stream, "", log, m)
	}
}
