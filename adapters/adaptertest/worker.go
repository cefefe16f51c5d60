package adaptertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Worker is a worker of a work-pulling stream for tests: it receives,
// records what it got, and confirms, unless told to hold.
type Worker struct {
	ID string
	C  *delivery.ConsumerController[[]byte]

	t      testing.TB
	cancel context.CancelFunc
	run    chan error
	recv   chan struct{}

	mu      sync.Mutex
	got     []int // every delivery, in order
	changed chan struct{}
	hold    bool // receive but confirm nothing
	delay   time.Duration
}

// StartWorker starts worker id on stream through opener and its receive
// loop; each message costs delay before it is confirmed.
func StartWorker(t testing.TB, ctx context.Context, opener delivery.LinkOpener, stream, id string, s delivery.WorkerSettings, delay time.Duration) *Worker {
	t.Helper()
	s.WorkerID = id
	c, err := delivery.NewWorkerController[[]byte](ctx, opener, stream, nil, s)
	if err != nil {
		t.Fatalf("worker %s: %v", id, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &Worker{ID: id, C: c, t: t, cancel: cancel, run: make(chan error, 1), recv: make(chan struct{}), changed: make(chan struct{}), delay: delay}
	go func() { w.run <- c.Run(wctx) }()
	go w.receive(wctx)
	t.Cleanup(w.Kill)
	return w
}

func (w *Worker) receive(ctx context.Context) {
	defer close(w.recv)
	for {
		d, err := w.C.Receive(ctx)
		if err != nil {
			return
		}
		i, err := Index(d.Message)
		if err != nil {
			w.t.Errorf("worker %s: %v", w.ID, err)
			return
		}
		if w.delay > 0 {
			time.Sleep(w.delay) // the sink's cost
		}
		w.mu.Lock()
		w.got = append(w.got, i)
		hold := w.hold
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		if !hold {
			d.Confirm()
		}
	}
}

// Hold makes the worker confirm nothing from now on (a stuck sink).
func (w *Worker) Hold() {
	w.mu.Lock()
	w.hold = true
	w.mu.Unlock()
}

// Got returns every delivery so far, in order.
func (w *Worker) Got() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.got...)
}

// WaitGot waits until the worker got at least n deliveries.
func (w *Worker) WaitGot(ctx context.Context, n int) error {
	for {
		w.mu.Lock()
		k, changed := len(w.got), w.changed
		w.mu.Unlock()
		if k >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// Stop stops the worker gracefully: it confirms what it took and leaves.
func (w *Worker) Stop(ctx context.Context) {
	w.t.Helper()
	if err := w.C.Shutdown(ctx); err != nil {
		w.t.Errorf("worker %s: shutdown: %v", w.ID, err)
	}
	w.Kill()
}

// Kill closes the worker at once (it still says it leaves, if its link
// can).
func (w *Worker) Kill() {
	w.C.Close()
	w.cancel()
	<-w.recv
	if err := <-w.run; err != nil && !errors.Is(err, context.Canceled) {
		w.t.Errorf("worker %s: run: %v", w.ID, err)
	}
	w.run <- nil // Kill twice returns at once
}

// Severable wraps a LinkOpener so that a test can cut one stream's links
// for good from this side (Sever): they send nothing and receive nothing
// more, as the links of a process that was killed, without a word to the
// peer.
type Severable struct {
	delivery.LinkOpener

	mu  sync.Mutex
	cut map[string]chan struct{}
}

// NewSeverable wraps opener.
func NewSeverable(opener delivery.LinkOpener) *Severable {
	return &Severable{LinkOpener: opener, cut: map[string]chan struct{}{}}
}

func (s *Severable) ch(stream string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cut[stream]
	if !ok {
		c = make(chan struct{})
		s.cut[stream] = c
	}
	return c
}

// Sever cuts every link of stream opened through s, now and later.
func (s *Severable) Sever(stream string) {
	c := s.ch(stream)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// OpenLink opens through the wrapped opener.
func (s *Severable) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	l, err := s.LinkOpener.OpenLink(ctx, stream, end)
	if err != nil {
		return nil, err
	}
	return &severedLink{Link: l, cut: s.ch(stream)}, nil
}

type severedLink struct {
	delivery.Link
	cut chan struct{}
}

func (l *severedLink) Send(ctx context.Context, frame []byte) error {
	select {
	case <-l.cut:
		return nil // swallowed, as by a dead process's socket
	default:
		return l.Link.Send(ctx, frame)
	}
}

func (l *severedLink) Receive(ctx context.Context) (delivery.Frame, error) {
	for {
		select {
		case <-l.cut:
			<-ctx.Done()
			return delivery.Frame{}, ctx.Err()
		default:
		}
		rctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.cut:
				cancel()
			case <-rctx.Done():
			}
		}()
		f, err := l.Link.Receive(rctx)
		cancel()
		if err == nil {
			select {
			case <-l.cut:
				continue // dropped: the process is dead
			default:
			}
			return f, nil
		}
		if ctx.Err() != nil || !isCut(l.cut) {
			return f, err
		}
	}
}

func isCut(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
