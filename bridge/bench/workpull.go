package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench/report"
	"github.com/bridge-mq/bridge/bridge/internal/workload"
)

// workPipe is one mechanism of the work-pulling scenario set up for one
// pass: a sending side, and workers that each run the pass's workTally
// sink on what they get and then acknowledge it.
type workPipe struct {
	send func(ctx context.Context, msg []byte) error
	// flush waits until the broker acknowledged everything sent; nil where
	// nothing is to be waited for.
	flush func(ctx context.Context) error
	// ready waits until every worker is served (a consumer group is
	// assigned, a work-pulling producer has every worker's hello); nil:
	// they are when the pipe is open.
	ready func(ctx context.Context) error
	// kill kills worker 0 at once, as SIGKILL would: it handles and
	// acknowledges nothing more, and says nothing to anyone.
	kill func()
	// resends is what the protocol sent again; nil for a broker's own.
	resends func() uint64
	failed  chan error
	close   func()
}

func (p *workPipe) fail(err error) {
	select {
	case p.failed <- err:
	default:
	}
}

// workMechanism is how a transport shares work: the protocol's work
// pulling, or the broker's own competing consumers.
type workMechanism struct {
	mode     string // report.WorkPulling or report.Competing
	client   string
	ordering string // what the mechanism guarantees, in report's words
	// strict: the mechanism guarantees ordering per order key whatever
	// happens, so an out-of-order delivery outside a kill fails the run.
	strict bool
	// atMostOnce: nothing redelivers, so a pass ends once nothing more
	// arrives and what did not is lost.
	atMostOnce bool
	open       func(ctx context.Context, stream string, workers int, t *workTally) (*workPipe, error)
}

// workPlan is what every pass of the scenario does.
type workPlan struct {
	count, size, window int
	workers             []int
	cost                time.Duration
}

// killPass is the scenario's short pass with a worker killed: half the
// count, over the most workers asked for (two at least: someone must take
// over), worker 0 killed once a quarter of the messages are in.
func (w workPlan) killPass() (count, workers, killAt int, ok bool) {
	workers = slices.Max(w.workers)
	count = max(w.count/2, 4)
	return count, workers, count / 4, workers >= 2
}

// runWorkPulling runs the work-pulling scenario over every transport: for
// each count of workers, the protocol's work pulling and the broker's
// competing consumers, taking turns; then the kill pass of each.
func runWorkPulling(ctx context.Context, svc bridge.Config, b Config, log *slog.Logger, prog *progress) ([]report.Row, error) {
	w := workPlan{count: b.Count, size: b.Size[0], window: b.window(), workers: b.Workers, cost: b.SinkCost}
	svc.Mode = "work-pulling"
	svc.TCPListen = "producer" // the work-pulling producer listens, every worker dials it
	var rows []report.Row
	for _, name := range b.Transports {
		tr, _ := transportNamed(name) // Validate checked the names
		t, err := openTarget(ctx, svc, b, tr, log)
		if err != nil {
			return rows, fmt.Errorf("bench %s: %w", name, err)
		}
		rs, err := runWorkTransport(ctx, t, w, prog, log)
		rows = append(rows, rs...)
		t.close()
		if err != nil {
			return rows, fmt.Errorf("bench %s, work pulling: %w", name, err)
		}
	}
	return rows, nil
}

func runWorkTransport(ctx context.Context, t *target, w workPlan, prog *progress, log *slog.Logger) ([]report.Row, error) {
	mechs := []workMechanism{workPullingMechanism(t, w, log)}
	if t.competing != nil {
		mechs = append([]workMechanism{*t.competing}, mechs...)
	}
	var rows []report.Row
	for i, workers := range w.workers {
		for k := range mechs {
			m := mechs[(k+i)%len(mechs)] // neither always runs first
			r, err := runWorkPass(ctx, t, m, w, w.count, workers, 0, prog, log)
			if err != nil {
				return rows, fmt.Errorf("%s, %d workers: %w", m.mode, workers, err)
			}
			rows = append(rows, r)
		}
	}
	if n, workers, killAt, ok := w.killPass(); ok {
		for _, m := range mechs {
			r, err := runWorkPass(ctx, t, m, w, n, workers, killAt, prog, log)
			if err != nil {
				return rows, fmt.Errorf("%s, %d workers, one killed: %w", m.mode, workers, err)
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// runWorkPass moves n messages through m to workers workers on a fresh
// stream, and, with killAt above 0, kills worker 0 once killAt messages
// are in. It measures from the first send to the last message handled.
func runWorkPass(ctx context.Context, t *target, m workMechanism, w workPlan, n, workers, killAt int, prog *progress, log *slog.Logger) (report.Row, error) {
	stream := fmt.Sprintf("bench-wp-%s-%d-%s", t.name, workers, strconv.FormatInt(time.Now().UnixNano(), 36))
	tally := newWorkTally(n, workers, killAt, w.cost)
	p, err := m.open(ctx, stream, workers, tally)
	if err != nil {
		return report.Row{}, fmt.Errorf("opening: %w", err)
	}
	defer func() {
		p.close()
		if m.mode == report.WorkPulling {
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := t.car.DeleteStream(fctx, stream); err != nil {
				log.Warn("bench: removing a stream's queues or topics", "stream", stream, "err", err)
			}
			cancel()
		}
	}()
	if p.ready != nil {
		rctx, cancel := context.WithTimeout(ctx, stallTimeout)
		err := p.ready(rctx)
		cancel()
		if err != nil {
			return report.Row{}, fmt.Errorf("waiting for the workers: %w", err)
		}
	}
	label := fmt.Sprintf("%s %s, %d workers", t.name, m.mode, workers)
	if killAt > 0 {
		label += ", one killed"
	}
	passCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stopProgress := prog.followWork(label, tally, start)
	sent := make(chan error, 1)
	go func() { sent <- feedWork(passCtx, p, n, w.size) }()
	killed := make(chan struct{})
	if killAt > 0 {
		go func() {
			defer close(killed)
			select {
			case <-tally.killNow:
				tally.kill(0)
				p.kill()
			case <-passCtx.Done():
			}
		}()
	} else {
		close(killed)
	}
	err = awaitWork(ctx, p, m, tally, sent)
	stopProgress()
	cancel()
	<-killed
	if err != nil {
		return report.Row{}, err
	}
	distinct, dups, outOfOrder, last := tally.snapshot()
	seconds := max(last.Sub(start), time.Microsecond).Seconds()
	r := report.Row{
		Transport: t.name, Broker: t.broker, Mode: m.mode, Client: m.client, Size: w.size, Window: w.window, Rounds: 1,
		Messages: distinct, Lost: n - distinct, Seconds: report.Round(seconds, 6),
		MsgsPerSec: report.Round(float64(distinct)/seconds, 1), MBPerSec: report.Round(float64(distinct)*float64(w.size)/seconds/1e6, 2),
		Duplicates: uint64(dups), Note: t.note,
		Workers: workers, SinkCostMs: report.Millis(w.cost), Ordering: m.ordering, OutOfOrder: outOfOrder,
	}
	if killAt > 0 {
		r.Killed = 1
	}
	if p.resends != nil {
		resends := p.resends()
		r.Resends = &resends
	}
	tally.mu.Lock()
	lat := tally.latencies
	tally.mu.Unlock()
	if q := workload.Percentiles(lat); q != nil {
		r.P50ms, r.P90ms, r.P99ms, r.MaxMs = report.Millis(q[0]), report.Millis(q[1]), report.Millis(q[2]), report.Millis(q[3])
	}
	var errs []error
	if m.mode == report.WorkPulling && r.Lost > 0 {
		errs = append(errs, fmt.Errorf("%d messages lost: work pulling must lose none", r.Lost))
	}
	if m.mode == report.WorkPulling && killAt == 0 && dups > 0 {
		errs = append(errs, fmt.Errorf("%d messages delivered twice with no worker killed", dups))
	}
	if m.strict && killAt == 0 && outOfOrder > 0 {
		errs = append(errs, fmt.Errorf("%d messages out of order: %s guarantees order %s", outOfOrder, m.mode, m.ordering))
	}
	return r, errors.Join(errs...)
}

// feedWork sends messages 1 to n as fast as the pipe takes them, then waits
// for the broker's acknowledgements where it has them.
func feedWork(ctx context.Context, p *workPipe, n, size int) error {
	var slab workload.Slab
	clock := workload.NewClock()
	for i := 1; i <= n; i++ {
		if err := p.send(ctx, slab.Message(i, size, clock.Now())); err != nil {
			return err
		}
	}
	if p.flush != nil {
		return p.flush(ctx)
	}
	return nil
}

// awaitWork waits until every message was handled, or, for an at-most-once
// mechanism, nothing more arrives, or the pass fails.
func awaitWork(ctx context.Context, p *workPipe, m workMechanism, t *workTally, sent <-chan error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sending := true
	var sentAt time.Time
	for {
		select {
		case <-t.reached:
			if sending {
				if err := <-sent; err != nil {
					return fmt.Errorf("sending: %w", err)
				}
			}
			return nil
		case err := <-sent:
			if err != nil {
				return fmt.Errorf("sending: %w", err)
			}
			sending, sentAt = false, time.Now()
		case err := <-p.failed:
			return err
		case <-tick.C:
			distinct, _, _, last := t.snapshot()
			if last.IsZero() {
				last = time.Now().Add(-time.Since(sentAt))
			}
			quiet := time.Since(last)
			if !sending && m.atMostOnce && quiet > rawQuiet && time.Since(sentAt) > rawQuiet {
				return nil // the rest is lost: the row says how many
			}
			if !sending && quiet > stallTimeout {
				return fmt.Errorf("stalled: nothing handled for %s (%d of %d messages in)", stallTimeout, distinct, t.target)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
