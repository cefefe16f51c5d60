package adaptertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Timings of the work-pulling tests: a dead worker is noticed in about a
// second, on any broker.
var (
	wpProducerSettings = delivery.WorkPullingSettings{
		ProducerSettings:  delivery.ProducerSettings{ProducerID: "wp-conformance", FirstResendInterval: 100 * time.Millisecond},
		WorkerTimeout:     1500 * time.Millisecond,
		HeartbeatInterval: 150 * time.Millisecond,
	}
	wpWorkerSettings = delivery.WorkerSettings{
		ConsumerSettings:  delivery.ConsumerSettings{ResendMin: 50 * time.Millisecond, ResendMax: 500 * time.Millisecond, Window: 50},
		HeartbeatInterval: 150 * time.Millisecond,
		ProducerTimeout:   1500 * time.Millisecond,
	}
)

// WorkPullingSettings are the timings the conformance suite runs work
// pulling with, for a carrier's own tests.
func WorkPullingSettings() (delivery.WorkPullingSettings, delivery.WorkerSettings) {
	return wpProducerSettings, wpWorkerSettings
}

// WorkProducer is a work-pulling producer for tests, sending messages
// 0..n-1 with confirmation from a goroutine of its own.
type WorkProducer struct {
	P *delivery.WorkPullingProducerController[[]byte]

	t     testing.TB
	run   chan error
	sent  chan error
	confs chan *delivery.Confirmation
}

// StartWorkProducer runs a work-pulling producer on stream and, once
// workers are served, sends n messages of size(i) bytes, each with a
// confirmation.
func StartWorkProducer(t testing.TB, ctx context.Context, opener delivery.LinkOpener, stream string, s delivery.WorkPullingSettings, n, workers int, size func(int) int) *WorkProducer {
	t.Helper()
	p, err := delivery.NewWorkPullingProducerController[[]byte](opener, stream, nil, s)
	if err != nil {
		t.Fatalf("work-pulling producer: %v", err)
	}
	wp := &WorkProducer{P: p, t: t, run: make(chan error, 1), sent: make(chan error, 1), confs: make(chan *delivery.Confirmation, n)}
	go func() { wp.run <- p.Run(ctx) }()
	go func() {
		defer close(wp.confs)
		for len(p.Stats().Workers) < workers {
			select {
			case <-time.After(5 * time.Millisecond): // polling Stats: nothing to await
			case <-ctx.Done():
				wp.sent <- ctx.Err()
				return
			}
		}
		for i := 0; i < n; i++ {
			c, err := p.SendWithConfirmation(ctx, Payload(i, size(i)))
			if err != nil {
				wp.sent <- fmt.Errorf("send %d: %w", i, err)
				return
			}
			wp.confs <- c
		}
		wp.sent <- nil
	}()
	t.Cleanup(func() { p.Close() })
	return wp
}

// WaitConfirmed waits until every message was sent and confirmed.
func (wp *WorkProducer) WaitConfirmed(ctx context.Context) {
	wp.t.Helper()
	for c := range wp.confs {
		if err := c.Wait(ctx); err != nil {
			wp.t.Fatalf("confirmation of %d: %v (stats %+v)", c.SeqNr(), err, wp.P.Stats())
		}
	}
	select {
	case err := <-wp.sent:
		if err != nil {
			wp.t.Fatalf("%v (stats %+v)", err, wp.P.Stats())
		}
	case <-ctx.Done():
		wp.t.Fatalf("%v (stats %+v)", ctx.Err(), wp.P.Stats())
	}
}

// Stop shuts the producer down and checks that its Run ended well.
func (wp *WorkProducer) Stop(ctx context.Context) {
	wp.t.Helper()
	if err := wp.P.Shutdown(ctx); err != nil {
		wp.t.Errorf("work-pulling producer: shutdown: %v", err)
	}
	if err := <-wp.run; err != nil {
		wp.t.Errorf("work-pulling producer: run: %v", err)
	}
}

// CheckWork checks what workers got of messages 0..n-1: every one at least
// once, and twice or more only if it is in mayRepeat.
func CheckWork(t testing.TB, n int, mayRepeat map[int]bool, workers ...*Worker) (duplicates int) {
	t.Helper()
	count := make([]int, n)
	for _, w := range workers {
		for _, i := range w.Got() {
			if i < 0 || i >= n {
				t.Errorf("worker %s got message %d of %d", w.ID, i, n)
				continue
			}
			count[i]++
		}
	}
	for i, c := range count {
		switch {
		case c == 0:
			t.Errorf("message %d lost", i)
		case c > 1 && !mayRepeat[i]:
			t.Errorf("message %d delivered %d times, and no worker that had it died", i, c)
		case c > 1:
			duplicates += c - 1
		}
	}
	return duplicates
}

// checkIncreasing fails unless a worker got its messages in the order they
// were sent.
func checkIncreasing(t testing.TB, w *Worker) {
	t.Helper()
	got := w.Got()
	for k := 1; k < len(got); k++ {
		if got[k] <= got[k-1] {
			t.Errorf("worker %s: message %d after %d", w.ID, got[k], got[k-1])
			return
		}
	}
}

func wpSize(i int) int {
	if i%50 == 7 {
		return 40_000 // chunked where a carrier's frames are small
	}
	return SmallMessages(i)
}

// testWorkPulling runs the work-pulling scenarios on the carrier.
func testWorkPulling(t *testing.T, spec Spec) {
	if spec.NoWorkPulling != "" {
		t.Skip("the carrier claims no work pulling:", spec.NoWorkPulling)
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Spec)
	}{
		{"Spread", testWPSpread},
		{"WorkerKilled", testWPWorkerKilled},
		{"WorkerLeaves", testWPWorkerLeaves},
		{"JoinDuringStream", testWPJoin},
		{"AllGoneAndBack", testWPAllGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, spec)
		})
	}
}

// testWPSpread: three workers share a stream; each message reaches exactly
// one, each worker gets its own in order, and all three get some.
func testWPSpread(t *testing.T, spec Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout())
	defer cancel()
	s, n := stream(t), spec.messages()/2
	var ws []*Worker
	for k := range 3 {
		ws = append(ws, StartWorker(t, ctx, spec.Carrier, s, fmt.Sprintf("w%d", k), wpWorkerSettings, 0))
	}
	p := StartWorkProducer(t, ctx, spec.Carrier, s, wpProducerSettings, n, 3, wpSize)
	p.WaitConfirmed(ctx)
	CheckWork(t, n, nil, ws...)
	for _, w := range ws {
		checkIncreasing(t, w)
		if len(w.Got()) == 0 {
			t.Errorf("worker %s got nothing", w.ID)
		}
	}
	if st := p.P.Stats(); st.Confirmed != uint64(n) || st.Unconfirmed != 0 {
		t.Errorf("stats: %+v", st)
	}
	p.Stop(ctx)
	for _, w := range ws {
		w.Stop(ctx)
	}
}

// testWPWorkerKilled: a worker that holds what it got is killed without a
// word (its links cut, then closed): after WorkerTimeout the other workers
// get everything it had not confirmed. Nothing is lost, and only what the
// dead worker had can arrive twice.
func testWPWorkerKilled(t *testing.T, spec Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout())
	defer cancel()
	s, n := stream(t), spec.messages()/2
	sev := NewSeverable(spec.Carrier)
	victim := StartWorker(t, ctx, sev, s, "victim", wpWorkerSettings, 0)
	victim.Hold()
	p := StartWorkProducer(t, ctx, spec.Carrier, s, wpProducerSettings, n, 1, wpSize)
	if err := victim.WaitGot(ctx, 20); err != nil {
		t.Fatalf("victim got %d: %v", len(victim.Got()), err)
	}
	other := StartWorker(t, ctx, spec.Carrier, s, "survivor", wpWorkerSettings, 0)
	if err := other.WaitGot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	sev.Sever(delivery.WorkerStream(s, "victim"))
	victim.Kill()
	p.WaitConfirmed(ctx)
	had := map[int]bool{}
	for _, i := range victim.Got() {
		had[i] = true
	}
	dups := CheckWork(t, n, had, victim, other)
	st := p.P.Stats()
	if st.TimedOut != 1 || st.HandedBack == 0 {
		t.Errorf("want the victim timed out and its messages handed back: %+v", st)
	}
	t.Logf("victim had %d unconfirmed, %d delivered twice; handed back %d", len(victim.Got()), dups, st.HandedBack)
	p.Stop(ctx)
	other.Stop(ctx)
}

// testWPWorkerLeaves: a worker stopped gracefully hands back what it had
// not confirmed at once, long before WorkerTimeout (Akka's unregistered
// worker); the other worker gets it.
func testWPWorkerLeaves(t *testing.T, spec Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout())
	defer cancel()
	s, n := stream(t), spec.messages()/4
	ps := wpProducerSettings
	ps.WorkerTimeout = time.Hour // only the leave can hand the messages back
	leaver := StartWorker(t, ctx, spec.Carrier, s, "leaver", wpWorkerSettings, 0)
	leaver.Hold()
	p := StartWorkProducer(t, ctx, spec.Carrier, s, ps, n, 1, wpSize)
	if err := leaver.WaitGot(ctx, 10); err != nil {
		t.Fatal(err)
	}
	stayer := StartWorker(t, ctx, spec.Carrier, s, "stayer", wpWorkerSettings, 0)
	leaver.Kill() // Close: it says it leaves, having confirmed nothing
	p.WaitConfirmed(ctx)
	had := map[int]bool{}
	for _, i := range leaver.Got() {
		had[i] = true
	}
	CheckWork(t, n, had, leaver, stayer)
	if st := p.P.Stats(); st.Left != 1 || st.TimedOut != 0 {
		t.Errorf("want the leaver gone by its leave: %+v", st)
	}
	p.Stop(ctx)
	stayer.Stop(ctx)
}

// testWPJoin: workers join while the stream flows, and take their share.
func testWPJoin(t *testing.T, spec Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout())
	defer cancel()
	s, n := stream(t), spec.messages()/2
	first := StartWorker(t, ctx, spec.Carrier, s, "first", wpWorkerSettings, time.Millisecond)
	p := StartWorkProducer(t, ctx, spec.Carrier, s, wpProducerSettings, n, 1, wpSize)
	if err := first.WaitGot(ctx, n/10); err != nil {
		t.Fatalf("%v: first got %d; %+v; first %+v", err, len(first.Got()), p.P.Stats(), first.C.Stats())
	}
	second := StartWorker(t, ctx, spec.Carrier, s, "second", wpWorkerSettings, time.Millisecond)
	third := StartWorker(t, ctx, spec.Carrier, s, "third", wpWorkerSettings, time.Millisecond)
	p.WaitConfirmed(ctx)
	CheckWork(t, n, nil, first, second, third)
	for _, w := range []*Worker{second, third} {
		if len(w.Got()) == 0 {
			t.Errorf("worker %s joined and got nothing", w.ID)
		}
	}
	p.Stop(ctx)
	for _, w := range []*Worker{first, second, third} {
		w.Stop(ctx)
	}
}

// testWPAllGone: with no worker, Send waits; every worker leaves mid-stream
// and new ones come: the stream goes on, nothing lost.
func testWPAllGone(t *testing.T, spec Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout())
	defer cancel()
	s, n := stream(t), spec.messages()/4
	p := StartWorkProducer(t, ctx, spec.Carrier, s, wpProducerSettings, n, 0, wpSize)
	if _, err := p.P.TrySend(Payload(n, 8)); err != delivery.ErrNoDemand {
		t.Fatalf("TrySend with no worker: %v, want ErrNoDemand", err)
	}
	a := StartWorker(t, ctx, spec.Carrier, s, "a", wpWorkerSettings, time.Millisecond)
	b := StartWorker(t, ctx, spec.Carrier, s, "b", wpWorkerSettings, time.Millisecond)
	if err := a.WaitGot(ctx, n/8); err != nil {
		t.Fatalf("%v: a got %d, b %d; %+v; a %+v", err, len(a.Got()), len(b.Got()), p.P.Stats(), a.C.Stats())
	}
	a.Hold()
	b.Hold()
	a.Kill()
	b.Kill()
	waitFor(t, ctx, func() bool { return len(p.P.Stats().Workers) == 0 })
	c := StartWorker(t, ctx, spec.Carrier, s, "c", wpWorkerSettings, 0)
	p.WaitConfirmed(ctx)
	had := map[int]bool{}
	for _, i := range slices.Concat(a.Got(), b.Got()) {
		had[i] = true
	}
	CheckWork(t, n, had, a, b, c)
	p.Stop(ctx)
	c.Stop(ctx)
}

func waitFor(t testing.TB, ctx context.Context, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond) // polling a condition of Stats
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("condition not met:", ctx.Err())
		}
	}
}
