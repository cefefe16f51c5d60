package delivery

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// wpWorker is one worker as its producer sees it: a point-to-point producer
// on the worker's stream, and the messages handed to it.
type wpWorker struct {
	id   string
	p    *ProducerController[[]byte]
	link *wpLink

	// Under the work-pulling controller's mutex.
	inflight  []*wpMsg // handed to this worker, not confirmed, in the order its producer took them
	head      int
	gone      bool
	handedOut uint64
	confirmed uint64

	sig     chan struct{} // something was handed out
	stop    chan struct{} // closed when the worker is removed
	runDone chan struct{} // closed when its producer's Run returned
	runErr  error         // set before runDone closes
	wg      sync.WaitGroup
}

// wpLink is the producer's end of a worker's stream: it takes the work
// frames off before the worker's producer sees any frame, notes when the
// worker was last heard, and lets heartbeats share the link with the
// producer's writer.
type wpLink struct {
	inner     Link
	sendMu    sync.Mutex
	lastHeard atomic.Int64
	leave     atomic.Pointer[workMsg]
	onLeave   func()
	badWork   atomic.Uint64
}

var (
	_ FrameSizeLimiter = (*wpLink)(nil)
	_ StatusReporter   = (*wpLink)(nil)
)

func (l *wpLink) Send(ctx context.Context, frame []byte) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	return l.inner.Send(ctx, frame)
}

func (l *wpLink) Receive(ctx context.Context) (Frame, error) {
	for {
		f, err := l.inner.Receive(ctx)
		if err != nil {
			return f, err
		}
		l.lastHeard.Store(time.Now().UnixNano())
		if !isWorkFrame(f.Data) {
			return f, nil
		}
		m, perr := parseWorkFrame(f.Data)
		switch {
		case perr != nil:
			l.badWork.Add(1)
		case m.typ == workLeave:
			if l.leave.Swap(&m) == nil {
				l.onLeave()
			}
			bctx, cancel := context.WithTimeout(ctx, time.Second)
			l.Send(bctx, encodeBye()) // lost, the worker stops waiting for it soon
			cancel()
		}
		if f.Release != nil {
			f.Release()
		}
	}
}

// heartbeat sends frame unless the producer's writer is sending: then the
// link is busy anyway, and the heartbeat must not wait behind it. A lost
// one is made up by the next, or by the producer's other frames.
func (l *wpLink) heartbeat(frame []byte, timeout time.Duration) {
	if !l.sendMu.TryLock() {
		return
	}
	defer l.sendMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l.inner.Send(ctx, frame)
}

func (l *wpLink) Close() error { return l.inner.Close() }

func (l *wpLink) MaxFrameSize() int {
	if f, ok := l.inner.(FrameSizeLimiter); ok {
		return f.MaxFrameSize()
	}
	return 0
}

func (l *wpLink) Status() LinkStatus {
	if s, ok := l.inner.(StatusReporter); ok {
		return s.Status()
	}
	return LinkStatus{Connected: true}
}

// addWorker starts serving a worker whose stream's link is open; on the
// Run goroutine.
func (w *WorkPullingProducerController[T]) addWorker(ctx context.Context, id string, link Link) error {
	wl := &wpLink{inner: link, onLeave: w.poke}
	wl.lastHeard.Store(time.Now().UnixNano())
	settings := w.inner
	w.mu.Lock()
	w.epoch = max(w.epoch+1, uint64(time.Now().UnixNano()))
	settings.Epoch = w.epoch
	if w.store != nil {
		w.store.setEpoch(w.epoch)
	}
	w.mu.Unlock()
	settings.Logger = w.inner.Logger.With("worker_id", id, "stream", WorkerStream(w.stream, id))
	p, err := NewProducerController[[]byte](wl, nil, settings)
	if err != nil {
		return err
	}
	wk := &wpWorker{id: id, p: p, link: wl, sig: make(chan struct{}, 1), stop: make(chan struct{}), runDone: make(chan struct{})}
	wk.wg.Add(3)
	go func() {
		defer wk.wg.Done()
		wk.runErr = p.Run(ctx)
		close(wk.runDone)
		w.poke()
	}()
	go func() { defer wk.wg.Done(); w.followConfirmations(wk) }()
	go func() { defer wk.wg.Done(); w.followDemand(wk) }()
	w.mu.Lock()
	w.workers[id] = wk
	w.broadcastLocked()
	w.mu.Unlock()
	w.c.joined.Add(1)
	w.log.Info("worker joined", "worker_id", id, "epoch", settings.Epoch)
	return nil
}

func (w *WorkPullingProducerController[T]) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// followConfirmations waits for the worker's confirmations, in the order
// its producer took the messages (they resolve in that order), and
// resolves each message once its worker confirmed it.
func (w *WorkPullingProducerController[T]) followConfirmations(wk *wpWorker) {
	for {
		w.mu.Lock()
		var m *wpMsg
		if wk.head < len(wk.inflight) {
			m = wk.inflight[wk.head]
		}
		w.mu.Unlock()
		if m == nil {
			select {
			case <-wk.sig:
				continue
			case <-wk.stop:
				return
			}
		}
		select {
		case <-m.inner.Done():
		case <-wk.stop:
			return
		}
		err := m.inner.Err()
		if errors.Is(err, ErrClosed) {
			return // the worker's producer stopped: its removal hands the rest on
		}
		w.mu.Lock()
		wk.inflight[wk.head] = nil
		wk.head++
		if wk.head == len(wk.inflight) {
			wk.inflight, wk.head = wk.inflight[:0], 0
		}
		wk.confirmed++
		w.confirmLocked(m, err)
		w.mu.Unlock()
	}
}

// confirmLocked resolves a message for good: confirmed by its worker, or,
// with err, refused (larger than the worker takes), its sender told.
func (w *WorkPullingProducerController[T]) confirmLocked(m *wpMsg, err error) {
	if m.done {
		return
	}
	m.done, m.worker, m.inner = true, nil, nil
	m.payload, m.headers = nil, nil // only its number waits for the older ones
	w.open--
	if err != nil {
		w.c.refused.Add(1)
		w.log.Error("a worker takes no message this large: refused it; its sender is told", "seq_nr", m.seqNr, "err", err)
	} else {
		w.c.confirmed.Add(1)
	}
	if m.reply != nil {
		m.reply.resolve(err)
	}
	// The oldest confirmed messages leave the list; the durable queue drops
	// every confirmed one, in order or not.
	n := 0
	for n < len(w.taken) && w.taken[n].done {
		n++
	}
	if n > 0 {
		clear(w.taken[:n])
		w.taken = w.taken[n:]
	}
	if w.store != nil {
		watermark := w.next - 1
		if len(w.taken) > 0 {
			watermark = w.taken[0].seqNr - 1
		}
		w.store.confirm(m.seqNr, watermark)
	}
	if w.open == 0 {
		w.poke() // a draining producer may stop
	}
}

// followDemand wakes senders when the worker's producer has demand again,
// and sends the worker a heartbeat every HeartbeatInterval.
func (w *WorkPullingProducerController[T]) followDemand(wk *wpWorker) {
	tick := time.NewTicker(w.s.HeartbeatInterval)
	defer tick.Stop()
	heartbeat := encodeHeartbeat()
	in := wk.p.intake
	var watched chan struct{}
	for {
		in.mu.Lock()
		demand, closed := in.demand, in.err != nil
		in.mu.Unlock()
		if closed {
			demand = nil
		}
		if demand != watched {
			// The intake replaces its channel only when it closes it, as
			// demand appears, so a new channel means demand appeared since
			// the last look, however this goroutine woke (a tick may win
			// over the closed channel). Told only now, with the channel of
			// the next change in hand: told before taking it, a sender could
			// use up the demand, and the worker grant more, in between, and
			// that grant would close a channel no one watched; a sender then
			// waited for demand the worker had granted, and the stream
			// stalled. The first time round, the worker's registration may
			// have granted its window before this goroutine took any channel.
			w.broadcast()
			watched = demand
		}
		select {
		case <-demand:
		case <-tick.C:
			wk.link.heartbeat(heartbeat, w.s.HeartbeatInterval)
		case <-wk.stop:
			return
		}
	}
}

// removeWorker stops serving a worker and hands its unconfirmed messages to
// the others; on the Run goroutine. With a leave, the messages of its
// numbering up to what it says it confirmed are confirmed.
func (w *WorkPullingProducerController[T]) removeWorker(wk *wpWorker, why string, leave *workMsg) {
	w.mu.Lock()
	if wk.gone {
		w.mu.Unlock()
		return
	}
	wk.gone = true
	delete(w.workers, wk.id)
	w.mu.Unlock()
	epoch := wk.p.Epoch()
	wk.p.Close() // its pending confirmations fail: followConfirmations returns
	close(wk.stop)
	wk.wg.Wait()

	w.mu.Lock()
	back := 0
	for _, m := range wk.inflight[wk.head:] {
		if m.done {
			continue
		}
		switch {
		case isDone(m.inner) && !errors.Is(m.inner.Err(), ErrClosed):
			w.confirmLocked(m, m.inner.Err()) // confirmed, or refused, before the worker went
		case leave != nil && leave.epoch == epoch && m.inner.SeqNr() <= leave.confirmed:
			w.confirmLocked(m, nil)
		default:
			m.worker, m.inner = nil, nil
			w.requeue = append(w.requeue, m)
			back++
		}
	}
	wk.inflight = nil
	if back > 0 {
		sortBySeqNr(w.requeue)
		w.c.handedBack.Add(uint64(back))
	}
	w.broadcastLocked()
	w.mu.Unlock()
	w.c.left.Add(1)
	w.log.Info("worker left", "worker_id", wk.id, "why", why, "handed_to_others", back)
}

func isDone(c *Confirmation) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func sortBySeqNr(ms []*wpMsg) {
	// Insertion sort: the list is two sorted runs, usually short.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].seqNr < ms[j-1].seqNr; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// handOutRequeued gives the messages handed back to workers with demand,
// oldest first; on the Run goroutine.
func (w *WorkPullingProducerController[T]) handOutRequeued() {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for n < len(w.requeue) {
		m := w.requeue[n]
		ok, err := w.handOutLocked(m)
		if err != nil {
			w.confirmLocked(m, err)
		} else if !ok {
			break
		}
		n++
		w.c.resent.Add(1)
	}
	if n > 0 {
		clear(w.requeue[:n])
		w.requeue = w.requeue[n:]
		if len(w.requeue) == 0 {
			w.requeue = nil
			w.broadcastLocked() // senders go again
		}
	}
}
