package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

// The scenarios of Akka's WorkPullingSpec and DurableWorkPullingSpec, on
// the memory carrier; adaptertest runs the others (spread, killed, leaving,
// joining, all gone) on every carrier.

func wpCarrier(t *testing.T) *memory.Carrier {
	c, err := memory.NewCarrier(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wpTimings() (delivery.WorkPullingSettings, delivery.WorkerSettings) {
	ps, ws := adaptertest.WorkPullingSettings()
	ps.WorkerTimeout, ps.HeartbeatInterval = 400*time.Millisecond, 50*time.Millisecond
	ws.HeartbeatInterval, ws.ProducerTimeout = 50*time.Millisecond, 400*time.Millisecond
	return ps, ws
}

func startWP(t *testing.T, ctx context.Context, opener delivery.LinkOpener, stream string, s delivery.WorkPullingSettings) (*delivery.WorkPullingProducerController[[]byte], func() error) {
	t.Helper()
	p, err := delivery.NewWorkPullingProducerController[[]byte](opener, stream, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	wait := run(t, ctx, p)
	t.Cleanup(func() { p.Close() })
	return p, wait
}

func waitWorkers(t *testing.T, ctx context.Context, p *delivery.WorkPullingProducerController[[]byte], n int) {
	t.Helper()
	waitWP(t, ctx, p, fmt.Sprintf("%d workers", n), func(st delivery.WorkPullingStats) bool { return len(st.Workers) == n })
}

// waitWP polls p's Stats until cond holds: the producer tells no event of
// its workers.
func waitWP(t *testing.T, ctx context.Context, p *delivery.WorkPullingProducerController[[]byte], want string, cond func(delivery.WorkPullingStats) bool) {
	t.Helper()
	for !cond(p.Stats()) {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("want %s: %+v", want, p.Stats())
		}
	}
}

// Akka: "reply to SendWithConfirmation when the worker dies": the reply
// waits for the worker that finally confirms the message, not the one that
// died with it.
func TestWorkPullingConfirmationAfterWorkerDies(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	sev := adaptertest.NewSeverable(c)
	ps, ws := wpTimings()
	p, _ := startWP(t, ctx, c, "s", ps)
	dying := adaptertest.StartWorker(t, ctx, sev, "s", "dying", ws, 0)
	dying.Hold()
	waitWorkers(t, ctx, p, 1)
	var confs []*delivery.Confirmation
	for i := range 5 {
		conf, err := p.SendWithConfirmation(ctx, adaptertest.Payload(i, 32))
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, conf)
	}
	if err := dying.WaitGot(ctx, 5); err != nil {
		t.Fatal(err)
	}
	sev.Sever(delivery.WorkerStream("s", "dying"))
	dying.Kill()
	select {
	case <-confs[0].Done():
		t.Fatalf("confirmed by a worker that confirmed nothing: %v", confs[0].Err())
	case <-time.After(100 * time.Millisecond): // a negative: nothing to await
	}
	next := adaptertest.StartWorker(t, ctx, c, "s", "next", ws, 0)
	for _, conf := range confs {
		if err := conf.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	adaptertest.CheckWork(t, 5, map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true}, dying, next)
	if got := next.Got(); len(got) != 5 {
		t.Errorf("the next worker got %v, want all five", got)
	}
}

// A worker's link that fails for good stops its stream: its messages go
// to the others at once, without waiting for WorkerTimeout.
func TestWorkPullingWorkerLinkFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	ps, ws := wpTimings()
	ps.WorkerTimeout = time.Hour
	rec := &recordingOpener{LinkOpener: c, links: map[string]delivery.Link{}}
	p, _ := startWP(t, ctx, rec, "s", ps)
	a := adaptertest.StartWorker(t, ctx, c, "s", "a", ws, 0)
	a.Hold()
	waitWorkers(t, ctx, p, 1)
	conf, err := p.SendWithConfirmation(ctx, adaptertest.Payload(0, 32))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitGot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rec.get(delivery.WorkerStream("s", "a")).Close() // the producer's end reads ErrLinkClosed
	b := adaptertest.StartWorker(t, ctx, c, "s", "b", ws, 0)
	if err := conf.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Got(); len(got) != 1 || got[0] != 0 {
		t.Errorf("b got %v", got)
	}
}

// recordingOpener keeps the last link it opened of each stream.
type recordingOpener struct {
	delivery.LinkOpener
	mu    sync.Mutex
	links map[string]delivery.Link
}

func (o *recordingOpener) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	l, err := o.LinkOpener.OpenLink(ctx, stream, end)
	if err == nil {
		o.mu.Lock()
		o.links[stream] = l
		o.mu.Unlock()
	}
	return l, err
}

func (o *recordingOpener) get(stream string) delivery.Link {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.links[stream]
}

// Akka's DurableWorkPullingSpec: a producer with a durable queue is killed
// while workers hold messages, some confirmed out of order across workers;
// the next lifetime hands everything unconfirmed to the workers present,
// and nothing confirmed again.
func TestWorkPullingDurableRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := wpCarrier(t)
	path := filepath.Join(t.TempDir(), "wp.db")
	ps, ws := wpTimings()
	open := func() delivery.DurableQueue {
		q, err := durable.Open(path, durable.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	ps.DurableQueue = open()
	p1, wait1 := startWP(t, ctx, c, "s", ps)
	confirming := adaptertest.StartWorker(t, ctx, c, "s", "confirming", ws, 0)
	holding := adaptertest.StartWorker(t, ctx, c, "s", "holding", ws, 0)
	holding.Hold()
	waitWorkers(t, ctx, p1, 2)
	const n = 200
	var confs []*delivery.Confirmation
	for i := range n {
		conf, err := p1.SendWithConfirmation(ctx, adaptertest.Payload(i, 64))
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, conf)
	}
	for _, conf := range confs {
		if err := conf.WaitStored(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := holding.WaitGot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for len(confirming.Got())+len(holding.Got()) < n {
		time.Sleep(5 * time.Millisecond) // polling: every message handed out
	}
	// Every confirmation of the confirming worker reaches the producer
	// before it stops: one still on its way would bring its message again
	// after the restart, rightly (at least once), though no worker that
	// had it died.
	for _, i := range confirming.Got() {
		select {
		case <-confs[i].Done():
		case <-ctx.Done():
			t.Fatalf("message %d, confirmed by its worker, never confirmed to the producer", i)
		}
	}
	confirmedBefore := map[int]bool{}
	for _, conf := range confs {
		if conf.Err() == nil && isDone(conf) {
			confirmedBefore[int(conf.SeqNr())-1] = true
		}
	}
	held := holding.Got()
	p1.Close()
	if err := wait1(); err != nil {
		t.Fatal(err)
	}
	holding.Kill()
	confirming.Kill()
	if len(held) == 0 || len(confirmedBefore) == 0 {
		t.Fatalf("want some held and some confirmed: %d held, %d confirmed", len(held), len(confirmedBefore))
	}

	ps.DurableQueue = open()
	p2, _ := startWP(t, ctx, c, "s", ps)
	after := adaptertest.StartWorker(t, ctx, c, "s", "after", ws, 0)
	for p2.Stats().Unconfirmed > 0 || p2.Stats().Workers == nil {
		select {
		case <-time.After(5 * time.Millisecond): // polling Stats
		case <-ctx.Done():
			t.Fatalf("restarted producer: %+v", p2.Stats())
		}
	}
	for _, i := range after.Got() {
		if confirmedBefore[i] {
			t.Errorf("message %d confirmed before the restart came again", i)
		}
	}
	may := map[int]bool{}
	for _, i := range held {
		may[i] = true
	}
	adaptertest.CheckWork(t, n, may, confirming, holding, after)
	if st := p2.Stats(); st.Taken != 0 || st.Confirmed != uint64(len(after.Got())) {
		t.Errorf("restarted stats: %+v", st)
	}
}

func isDone(c *delivery.Confirmation) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// A chunked message goes whole to one worker.
func TestWorkPullingChunked(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	ps, ws := wpTimings()
	ps.ChunkSize = 100
	p, _ := startWP(t, ctx, c, "s", ps)
	var workers []*adaptertest.Worker
	for k := range 3 {
		workers = append(workers, adaptertest.StartWorker(t, ctx, c, "s", fmt.Sprint("w", k), ws, 0))
	}
	waitWorkers(t, ctx, p, 3)
	const n = 60
	var last *delivery.Confirmation
	for i := range n {
		var err error
		if last, err = p.SendWithConfirmation(ctx, adaptertest.Payload(i, 50+i*37)); err != nil {
			t.Fatal(err)
		}
	}
	if err := last.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for p.Stats().Unconfirmed > 0 {
		time.Sleep(5 * time.Millisecond) // polling Stats
	}
	adaptertest.CheckWork(t, n, nil, workers...) // Index checks every byte of each
}

// A point-to-point consumer on a work-pulling stream is refused, and
// counted; a worker on a point-to-point producer's stream is refused by
// the producer with an error that names the mode.
func TestWorkPullingMixedPair(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	ps, ws := wpTimings()
	p, _ := startWP(t, ctx, c, "wp", ps)
	link, err := c.OpenLink(ctx, "wp", delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := delivery.NewConsumerController[[]byte](link, nil, fastConsumer)
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, cc)
	defer cc.Close()
	for p.Stats().WrongMode == 0 {
		select {
		case <-time.After(5 * time.Millisecond): // polling Stats
		case <-ctx.Done():
			t.Fatal("the point-to-point consumer was not refused")
		}
	}

	plink, err := c.OpenLink(ctx, "p2p", delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := delivery.NewProducerController[[]byte](plink, nil, delivery.ProducerSettings{ProducerID: "p2p"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, pp)
	defer pp.Close()
	adaptertest.StartWorker(t, ctx, c, "p2p", "w", ws, 0)
	for pp.Stats().BadFrames == 0 {
		select {
		case <-time.After(5 * time.Millisecond): // polling Stats
		case <-ctx.Done():
			t.Fatal("the worker was not refused")
		}
	}
}

// Hellos under made-up IDs cost at most MaxWorkers streams; past them they
// are refused and counted.
func TestWorkPullingMaxWorkers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	ps, _ := wpTimings()
	ps.MaxWorkers = 3
	ps.WorkerTimeout = time.Hour
	p, _ := startWP(t, ctx, c, "s", ps)
	waitFor := func(cond func(delivery.WorkPullingStats) bool) {
		for !cond(p.Stats()) {
			select {
			case <-time.After(5 * time.Millisecond): // polling Stats
			case <-ctx.Done():
				t.Fatalf("%+v", p.Stats())
			}
		}
	}
	pipe := c.Pipe("s")
	for k := 0; p.Stats().HellosRefused < 5; k++ {
		if ctx.Err() != nil {
			t.Fatalf("%+v", p.Stats())
		}
		pipe.Inject(delivery.ProducerEnd, delivery.EncodeHelloForTest(fmt.Sprint("x", k)))
		time.Sleep(6 * time.Millisecond) // pacing, past joinEvery, so that each hello counts
	}
	pipe.Inject(delivery.ProducerEnd, []byte{0xBD, 2, 3, 1, 200}) // a hello that overruns
	waitFor(func(st delivery.WorkPullingStats) bool { return st.BadFrames == 1 })
	if st := p.Stats(); len(st.Workers) != 3 || st.Joined != 3 {
		t.Errorf("want 3 workers: %+v", st)
	}
}

func TestWorkPullingSettings(t *testing.T) {
	c := wpCarrier(t)
	_, err := delivery.NewWorkPullingProducerController[[]byte](c, "s", nil, delivery.WorkPullingSettings{})
	var se *delivery.SettingError
	if !errors.As(err, &se) || se.Setting != "ProducerID" {
		t.Errorf("no ProducerID: %v", err)
	}
	_, err = delivery.NewWorkerController[[]byte](context.Background(), c, "s", nil, delivery.WorkerSettings{WorkerID: "a_b"})
	if !errors.As(err, &se) || se.Setting != "WorkerID" {
		t.Errorf("a worker ID with an underscore: %v", err)
	}
}

// A worker that joins a busy stream gets work: until its first message it
// has the demand of one, far below that of a worker already served, which
// must not decide who gets the next message.
func TestWorkPullingJoinerServedWhileBusy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	ps, ws := wpTimings()
	p, _ := startWP(t, ctx, c, "s", ps)
	first := adaptertest.StartWorker(t, ctx, c, "s", "first", ws, 0)
	waitWorkers(t, ctx, p, 1)
	late := adaptertest.StartWorker(t, ctx, c, "s", "late", ws, 0)
	// Served first: a hello within joinEvery of the first worker's join is
	// answered only when repeated, a HeartbeatInterval later, by when the
	// first worker alone may have confirmed all 500.
	waitWorkers(t, ctx, p, 2)
	sent := 0
	for i := 0; len(late.Got()) == 0; i++ {
		if i == 500 {
			t.Fatalf("the late worker got nothing of %d messages sent while it was served: %+v", i, p.Stats())
		}
		// One at a time, as a steady stream below the workers' pace is:
		// the first worker's demand then stays at its window.
		conf, err := p.SendWithConfirmation(ctx, adaptertest.Payload(i, 32))
		if err != nil {
			t.Fatal(err)
		}
		if err := conf.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if err := p.Shutdown(ctx); err != nil { // it delivers what it took first
		t.Fatal(err)
	}
	adaptertest.CheckWork(t, sent, nil, first, late)
}

// A worker's demand defaults to DefaultWorkerWindow, smaller than a
// point-to-point consumer's window; one given is kept.
func TestWorkerWindowDefault(t *testing.T) {
	s, err := delivery.WorkerDefaults(delivery.WorkerSettings{WorkerID: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Window != delivery.DefaultWorkerWindow {
		t.Errorf("default worker window %d, want %d", s.Window, delivery.DefaultWorkerWindow)
	}
	s, err = delivery.WorkerDefaults(delivery.WorkerSettings{WorkerID: "w1", ConsumerSettings: delivery.ConsumerSettings{Window: 7}})
	if err != nil || s.Window != 7 {
		t.Errorf("a worker window of 7 became %d (%v)", s.Window, err)
	}
}
