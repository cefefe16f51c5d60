package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridge-mq/bridge/bridge/bench/report"
	"github.com/bridge-mq/bridge/bridge/internal/workload"
)

const (
	// rawQuiet: once a raw sender is done, this long with nothing new
	// arriving means the rest was lost (core NATS is at most once).
	rawQuiet = 5 * time.Second
	// stallTimeout: this long with nothing arriving fails the run.
	stallTimeout = time.Minute
)

// modeRun is one mode's part of a run (one transport and size): its pipe,
// what its receiving side counted, and what its rounds measured.
type modeRun struct {
	mode string
	pipe *pipe

	mu      sync.Mutex // the receiving side fills tally; the bench reads it at the end
	tally   *workload.Tally
	target  atomic.Int64 // distinct messages that end the current round
	last    atomic.Int64 // when the latest message arrived, unix nanoseconds
	reached chan struct{}

	warmed   int64 // distinct messages in before the measured rounds
	measured roundStats
}

// roundStats is what rounds measured.
type roundStats struct {
	seconds  float64       // first send to last receipt
	cpu      time.Duration // the process's CPU time
	cpuKnown bool
	peakHeap uint64 // bytes
}

func (s *roundStats) add(r roundStats) {
	s.seconds += r.seconds
	s.cpu += r.cpu
	s.cpuKnown = s.cpuKnown && r.cpuKnown
	s.peakHeap = max(s.peakHeap, r.peakHeap)
}

func newModeRun(mode string, count int) *modeRun {
	m := &modeRun{mode: mode, tally: workload.NewTally(count), reached: make(chan struct{}, 1), measured: roundStats{cpuKnown: true}}
	m.target.Store(int64(count) + 1)
	return m
}

// deliver is the pipe's deliverFunc: it counts msg and says when the
// round's last message is in.
func (m *modeRun) deliver(msg []byte, now time.Time) { m.deliverAll([][]byte{msg}, now) }

// deliverAll is deliver for a batch of messages received together, which
// it counts at once.
func (m *modeRun) deliverAll(msgs [][]byte, now time.Time) {
	m.mu.Lock()
	m.tally.AddAll(msgs, now)
	m.mu.Unlock()
	m.last.Store(now.UnixNano())
	if m.tally.Distinct() >= m.target.Load() {
		select {
		case m.reached <- struct{}{}:
		default:
		}
	}
}

// warmUp moves messages 1 to n untimed, and forgets their latencies: the
// measured rounds start with connections, buffers, the protocol's first
// message and the heap's size behind them, for every mode alike.
func (m *modeRun) warmUp(ctx context.Context, n, size int, perSecond float64, prog *progress, label string) error {
	if _, err := m.round(ctx, 1, n, size, perSecond, prog, label); err != nil {
		return err
	}
	m.mu.Lock()
	m.tally.ForgetLatencies()
	m.mu.Unlock()
	m.warmed = m.tally.Distinct()
	return nil
}

// measure runs a round and adds what it measured to the mode's.
func (m *modeRun) measure(ctx context.Context, first, n, size int, perSecond float64, prog *progress, label string) error {
	s, err := m.round(ctx, first, n, size, perSecond, prog, label)
	m.measured.add(s)
	return err
}

// round sends messages first to first+n-1 and waits until they are in,
// a raw mode's losses are clear, or the run fails, and says how long that
// took, the CPU time it used and the heap's peak.
func (m *modeRun) round(ctx context.Context, first, n, size int, perSecond float64, prog *progress, label string) (roundStats, error) {
	runtime.GC() // each round starts from a clean heap: the one before leaves no garbage to it
	base := m.tally.Distinct()
	m.target.Store(base + int64(n))
	roundCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	heap := startHeapSampler()
	cpu0, cpuOK := cpuTime()
	start := time.Now()
	m.last.Store(start.UnixNano())
	stopProgress := prog.follow(label, m, start)
	sent := make(chan error, 1)
	go func() { sent <- feed(roundCtx, m.pipe, first, n, size, perSecond) }()

	sending, err := m.await(ctx, sent)
	stopProgress()
	if err == nil && sending {
		err = <-sent // the last publisher confirms
		if err != nil {
			err = fmt.Errorf("sending: %w", err)
		}
	}
	if err != nil {
		cancel()
		select { // a client that ignores ctx must not hold the bench forever
		case <-sent:
		case <-time.After(stallTimeout):
		}
		heap.done()
		return roundStats{}, err
	}
	s := roundStats{seconds: max(time.Unix(0, m.last.Load()).Sub(start), time.Microsecond).Seconds()}
	if cpu1, ok := cpuTime(); ok && cpuOK {
		s.cpu, s.cpuKnown = cpu1-cpu0, true
	}
	s.peakHeap = heap.done()
	return s, nil
}

// await waits for the round's end. It returns whether the sender is still
// at work (waiting for acknowledgements of what arrived).
func (m *modeRun) await(ctx context.Context, sent <-chan error) (sending bool, err error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sending = true
	var sentAt time.Time
	for m.tally.Distinct() < m.target.Load() {
		select {
		case <-m.reached:
		case err := <-sent:
			if err != nil {
				return false, fmt.Errorf("sending: %w", err)
			}
			sending, sentAt = false, time.Now()
		case err := <-m.pipe.failed:
			return sending, err
		case <-tick.C:
			quiet := time.Since(time.Unix(0, m.last.Load()))
			if !sending && m.mode == report.Raw && quiet > rawQuiet && time.Since(sentAt) > rawQuiet {
				return false, nil // the rest is lost: the run says how many
			}
			if quiet > stallTimeout {
				return sending, fmt.Errorf("stalled: nothing arrived for %s (%d of %d messages in)",
					stallTimeout, m.tally.Distinct(), m.target.Load())
			}
		case <-ctx.Done():
			return sending, ctx.Err()
		}
	}
	return sending, nil
}

// feed sends generated messages first to first+n-1 at perSecond (0: as
// fast as the pipe takes them), then waits for the broker's
// acknowledgements where the pipe has them. Paced, message k is due k/rate
// after the start: a sender that fell behind (a busy machine, a blocked
// client) catches up at once rather than lose the time, so the rate asked
// for is the rate sent; each message's time is taken when it is sent.
func feed(ctx context.Context, p *pipe, first, n, size int, perSecond float64) error {
	start := time.Now()
	var wait *time.Timer
	var slab workload.Slab // an allocation per message was a tenth of a tcp run's CPU
	clock := workload.NewClock()
	for k := range n {
		if perSecond > 0 {
			if d := time.Until(start.Add(time.Duration(float64(k) / perSecond * float64(time.Second)))); d > 0 {
				if wait == nil {
					wait = time.NewTimer(d)
				} else {
					wait.Reset(d)
				}
				select {
				case <-wait.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if err := p.send(ctx, slab.Message(first+k, size, clock.Now())); err != nil {
			return err
		}
	}
	if p.flush != nil {
		return p.flush(ctx)
	}
	return nil
}

// latencies returns a copy of the latencies measured so far.
func (m *modeRun) latencies() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tally.Latencies()
}

// row turns what m measured into a row. Figures are rounded to what is
// worth reading.
func (m *modeRun) row(t *target, w plan) report.Row {
	r := report.Row{
		Transport:  t.name,
		Broker:     t.broker,
		Mode:       m.mode,
		Client:     t.client,
		Size:       w.size,
		Window:     w.window,
		Rate:       w.rate,
		Rounds:     w.rounds,
		Messages:   int(m.tally.Distinct() - m.warmed),
		Seconds:    report.Round(m.measured.seconds, 6),
		PeakHeapMB: report.Round(float64(m.measured.peakHeap)/1e6, 1),
		Duplicates: uint64(m.tally.Duplicates()),
		Note:       t.note,
	}
	if m.mode != report.Raw {
		r.Client = "the protocol over the " + t.name + " carrier, as the service runs it"
		switch {
		case m.mode == report.Durable:
			r.Client += ", with the durable producer queue"
		case m.mode == report.Sealed:
			r.Client += ", with sealed frames (BRIDGE_SECRET)"
		case m.mode == report.Headers:
			r.Client += ", three headers of 32 bytes on every message"
		case m.mode == report.Traced:
			r.Client += fmt.Sprintf(", traced with OpenTelemetry, %s of messages sampled", strconv.FormatFloat(w.traceSample*100, 'f', -1, 64)+"%")
		case t.cfg.Sealed() && !w.sealed:
			r.Client += ", frames sealed (BRIDGE_SECRET)"
		}
		resends, dropped := m.pipe.stats()
		r.Resends, r.Duplicates = &resends, dropped
	}
	r.Lost = w.count - r.Messages
	rate := float64(r.Messages) / max(m.measured.seconds, 1e-9)
	r.MsgsPerSec = report.Round(rate, 1)
	r.MBPerSec = report.Round(rate*float64(w.size)/1e6, 2)
	if m.measured.cpuKnown {
		cpu := report.Round(m.measured.cpu.Seconds(), 3)
		r.CPUSeconds = &cpu
		if r.Messages > 0 {
			perMsg := report.Round(float64(m.measured.cpu.Nanoseconds())/float64(r.Messages), 0)
			r.CPUNsPerMsg = &perMsg
		}
	}
	lat := m.latencies()
	if p := workload.Percentiles(lat); p != nil { // sorts lat
		r.P50ms, r.P90ms, r.P99ms, r.MaxMs = report.Millis(p[0]), report.Millis(p[1]), report.Millis(p[2]), report.Millis(p[3])
		for _, q := range report.SpreadQuantiles {
			r.Spread = append(r.Spread, report.Millis(workload.Quantile(lat, q)))
		}
	}
	return r
}
