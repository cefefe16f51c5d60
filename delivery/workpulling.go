package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// WorkPullingSettings configure a WorkPullingProducerController.
type WorkPullingSettings struct {
	// ProducerSettings configure the producer: ProducerID names it (every
	// worker's stream carries it), DurableQueue keeps every message until
	// the worker that finally got it confirms it, and the rest configure
	// each worker's stream as they would a point-to-point producer
	// (MaxUnconfirmed and MaxUnconfirmedBytes bound each worker's). Epoch is
	// where the workers' numberings start: each new one takes a larger one.
	ProducerSettings

	// MaxWorkers bounds the workers served at once; a hello past it is
	// refused, counted and logged. Default DefaultMaxWorkers.
	MaxWorkers int

	// WorkerTimeout is how long a worker's stream may be silent before the
	// worker is taken for dead and its unconfirmed messages go to others.
	// Workers send a heartbeat every HeartbeatInterval, so keep it at
	// several of those. Default DefaultWorkerTimeout.
	WorkerTimeout time.Duration

	// HeartbeatInterval is how often the producer tells each worker it is
	// alive. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
}

func (s WorkPullingSettings) withDefaults() (WorkPullingSettings, error) {
	var errs settingErrors
	ps, err := s.ProducerSettings.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	s.ProducerSettings = ps
	errs.size(&s.MaxWorkers, "MaxWorkers", DefaultMaxWorkers, 1)
	errs.duration(&s.WorkerTimeout, "WorkerTimeout", DefaultWorkerTimeout)
	errs.duration(&s.HeartbeatInterval, "HeartbeatInterval", DefaultHeartbeatInterval)
	return s, errs.err()
}

// WorkPullingProducerController hands each message to exactly one of many
// workers, whichever has demand, as Akka's WorkPullingProducerController
// does. Workers join and leave at any time; each is a ConsumerController
// made by NewWorkerController, with a worker ID. The producer runs one
// point-to-point numbering per worker, on the worker's own stream
// (WorkerStream), so what one worker gets comes to it in order and once,
// resent and confirmed as in point-to-point; a message is never split
// across workers.
//
// Send, TrySend and SendWithConfirmation have ProducerController's shape.
// Send waits while no worker has demand. The sequence number they return
// is the producer's own count of messages (one per message, chunked or
// not), the key of the durable queue; a Confirmation resolves once the
// worker that finally got the message confirmed it.
//
// With a DurableQueue, a message goes to a worker as soon as it is taken,
// and is stored meanwhile (its Confirmation's Stored stage says when): a
// crash before the sync may lose a message the sender was not told is
// stored, never one it was.
//
// When a worker leaves (it says so as it stops) or dies (its link fails,
// or it is silent past WorkerTimeout), every message it had not confirmed
// goes to the other workers, before any new one: nothing is lost, and only
// those messages can be delivered twice. With a DurableQueue, a producer
// that restarts hands everything unconfirmed to the workers present.
//
// Run opens the stream's producer end, where workers say hello, and runs
// the controller; it starts a reader of that link, a storer with a durable
// queue, and, for each worker, its producer controller (three goroutines)
// and two more: one follows the worker's confirmations, one its demand and
// heartbeats. Run waits for all of them before it returns.
type WorkPullingProducerController[T any] struct {
	s      WorkPullingSettings
	inner  ProducerSettings // each worker's producer's
	ser    Serializer[T]
	opener LinkOpener
	stream string
	log    *slog.Logger
	life   lifecycle
	kick   chan struct{} // a worker left or its producer stopped: Run looks

	mu      sync.Mutex
	ready   bool // Run has loaded the durable queue (at once without one)
	err     error
	changed chan struct{} // closed, and replaced, when demand may have appeared
	workers map[string]*wpWorker
	requeue []*wpMsg // handed back by workers that left, oldest first; they go first
	taken   []*wpMsg // taken and not confirmed, oldest first (confirmed ones until the oldest is)
	next    SeqNr    // the next message's number
	open    int      // messages taken and not confirmed
	epoch   uint64   // the last epoch a worker's numbering took
	store   *wpStore // nil without a durable queue
	c       wpCounters
}

// wpMsg is one message taken from the application.
type wpMsg struct {
	seqNr   SeqNr
	payload []byte
	headers Headers       // checked; kept, as given, until confirmed
	reply   *Confirmation // nil unless asked for
	inner   *Confirmation // the current worker's, for this hand-out
	worker  *wpWorker     // the worker it is with, or nil
	sends   int           // hand-outs so far
	done    bool          // confirmed, or refused and its sender told
}

// NewWorkPullingProducerController returns a controller that hands T to
// the workers of the work-pulling stream named stream, opening the links
// it needs through opener. serializer may be nil when T is []byte or
// string. The settings are checked here; an invalid one gives a
// *SettingError. The controller owns settings.DurableQueue from this call
// on, as NewProducerController does.
func NewWorkPullingProducerController[T any](opener LinkOpener, stream string, serializer Serializer[T], settings WorkPullingSettings) (*WorkPullingProducerController[T], error) {
	w, err := newWorkPulling(opener, stream, serializer, settings)
	if err != nil && settings.DurableQueue != nil {
		settings.DurableQueue.Close()
	}
	return w, err
}

func newWorkPulling[T any](opener LinkOpener, stream string, serializer Serializer[T], settings WorkPullingSettings) (*WorkPullingProducerController[T], error) {
	s, err := settings.withDefaults()
	if err != nil {
		return nil, err
	}
	ser, err := serializerFor(serializer)
	if err != nil {
		return nil, err
	}
	if opener == nil {
		return nil, &SettingError{Setting: "opener", Value: nil, Reason: "required"}
	}
	if stream == "" {
		return nil, &SettingError{Setting: "stream", Value: stream, Reason: "required"}
	}
	inner := s.ProducerSettings
	inner.DurableQueue = nil
	w := &WorkPullingProducerController[T]{
		s: s, inner: inner, ser: ser, opener: opener, stream: stream,
		log:     s.Logger.With("producer_id", s.ProducerID, "stream", stream, "mode", "work-pulling"),
		life:    newLifecycle(),
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		workers: map[string]*wpWorker{},
		next:    1,
		epoch:   s.Epoch - 1,
	}
	if s.DurableQueue == nil {
		w.ready = true
	} else {
		w.store = newWPStore(s.DurableQueue)
	}
	return w, nil
}

// ID returns the producer ID.
func (w *WorkPullingProducerController[T]) ID() string { return w.s.ProducerID }

// Send waits until a worker has demand, hands msg to it and returns the
// message's number. Returning means the controller took the message, not
// that it was delivered. Its errors are ProducerController.Send's.
func (w *WorkPullingProducerController[T]) Send(ctx context.Context, msg T) (SeqNr, error) {
	n, _, err := w.SendMessage(ctx, Outgoing[T]{Message: msg})
	return n, err
}

// TrySend is Send without the wait: it returns ErrNoDemand at once when no
// worker has demand.
func (w *WorkPullingProducerController[T]) TrySend(msg T) (SeqNr, error) {
	n, _, err := w.SendMessage(context.Background(), Outgoing[T]{Message: msg, NoWait: true})
	return n, err
}

// SendWithConfirmation is Send with a reply, which resolves once the worker
// that finally got the message confirmed it.
func (w *WorkPullingProducerController[T]) SendWithConfirmation(ctx context.Context, msg T) (*Confirmation, error) {
	_, c, err := w.SendMessage(ctx, Outgoing[T]{Message: msg, Confirm: true})
	return c, err
}

// TrySendWithConfirmation is SendWithConfirmation without the wait.
func (w *WorkPullingProducerController[T]) TrySendWithConfirmation(msg T) (*Confirmation, error) {
	_, c, err := w.SendMessage(context.Background(), Outgoing[T]{Message: msg, Confirm: true, NoWait: true})
	return c, err
}

// newMsg checks o and serializes it as a message to hand out: its headers (a
// *HeaderError past the limits), its payload (a *MarshalError) and the
// payload's size (a *MessageTooLargeError over MaxMessageSize).
func (w *WorkPullingProducerController[T]) newMsg(o Outgoing[T]) (*wpMsg, error) {
	if err := checkHeaders(o.Headers); err != nil {
		return nil, err
	}
	payload, err := w.ser.Marshal(o.Message)
	if err != nil {
		return nil, &MarshalError{Err: err}
	}
	if len(payload) > w.s.MaxMessageSize {
		return nil, &MessageTooLargeError{Size: len(payload), Limit: w.s.MaxMessageSize}
	}
	return &wpMsg{payload: payload, headers: o.Headers}, nil
}

// SendMessage is ProducerController.SendMessage for work pulling.
func (w *WorkPullingProducerController[T]) SendMessage(ctx context.Context, o Outgoing[T]) (SeqNr, *Confirmation, error) {
	m, err := w.newMsg(o)
	if err != nil {
		return 0, nil, err
	}
	for {
		w.mu.Lock()
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return 0, nil, err
		}
		changed := w.changed
		if w.ready && len(w.requeue) == 0 {
			ok, err := w.handOutLocked(m)
			if err != nil {
				w.mu.Unlock()
				return 0, nil, err
			}
			if ok {
				w.takeLocked(m, o.Confirm)
				w.mu.Unlock()
				return m.seqNr, m.reply, nil
			}
		}
		w.mu.Unlock()
		if o.NoWait {
			return 0, nil, ErrNoDemand
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// takeLocked numbers a message handed out for the first time, and keeps it
// until it is confirmed.
func (w *WorkPullingProducerController[T]) takeLocked(m *wpMsg, confirm bool) {
	m.seqNr = w.next
	w.next++
	if confirm {
		m.reply = newConfirmation(m.seqNr)
	}
	w.taken = append(w.taken, m)
	w.open++
	w.c.taken.Add(1)
	if w.store != nil {
		w.store.add(StoredMessage{SeqNr: m.seqNr, FirstChunk: true, LastChunk: true, Headers: storeHeaders(m.headers), Payload: m.payload}, m.reply)
	} else if m.reply != nil {
		m.reply.resolveStored(nil)
	}
}

// handOutLocked gives m to one of the workers with demand that have the
// fewest messages in flight (which one of those is left to the map's
// random order), and reports whether one took it. Demand does not choose:
// a worker that has just joined has the demand of one message until its
// registration or its first request arrives with its window, so chosen by
// demand it would get nothing while the others had more, that is for as
// long as the stream is busy. A worker that cannot take a message this
// large is passed over; if none with demand can, the error says so.
func (w *WorkPullingProducerController[T]) handOutLocked(m *wpMsg) (bool, error) {
	var tooLarge error
	var triedRoom [4]*wpWorker // a message is nearly always taken by the first tried
	tried := triedRoom[:0]
	for {
		var best *wpWorker
		bestInFlight := 0
		for _, wk := range w.workers {
			if wk.gone || slices.Contains(tried, wk) {
				continue
			}
			n := len(wk.inflight) - wk.head
			if (best == nil || n < bestInFlight) && wk.p.intake.demandNow() > 0 {
				best, bestInFlight = wk, n
			}
		}
		if best == nil {
			return false, tooLarge
		}
		tried = append(tried, best)
		a, err := best.p.prepare(m.payload, m.headers)
		if err != nil {
			return false, err
		}
		_, c, err := best.p.intake.offer(context.Background(), a, true, false)
		if err != nil {
			if _, ok := err.(*MessageTooLargeError); ok {
				tooLarge = err
			}
			continue // no demand after all, or the worker's producer stops
		}
		m.inner, m.worker = c, best
		m.sends++
		best.inflight = append(best.inflight, m)
		best.handedOut++
		select {
		case best.sig <- struct{}{}:
		default:
		}
		return true, nil
	}
}

// broadcast wakes everyone waiting for demand.
func (w *WorkPullingProducerController[T]) broadcast() {
	w.mu.Lock()
	w.broadcastLocked()
	w.mu.Unlock()
}

func (w *WorkPullingProducerController[T]) broadcastLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Demand reports the demand of all workers together: 0 means Send would
// wait and TrySend fail.
func (w *WorkPullingProducerController[T]) Demand() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ready || len(w.requeue) > 0 {
		return 0
	}
	n := 0
	for _, wk := range w.workers {
		if !wk.gone {
			n += int(wk.p.intake.demandNow())
		}
	}
	return n
}

// Run runs the controller until ctx ends (it returns ctx's error), Close or
// Shutdown stops it (nil), or it fails for good: the stream's link, or the
// durable queue. A controller runs once.
func (w *WorkPullingProducerController[T]) Run(ctx context.Context) error {
	if err := w.life.begin(); err != nil {
		return err
	}
	err := w.run(ctx)
	w.life.end(err)
	return err
}

// Shutdown stops taking messages (Send returns ErrClosed), waits until
// every message taken is confirmed by some worker, then stops. If ctx ends
// first, it stops anyway and says how many messages were left.
func (w *WorkPullingProducerController[T]) Shutdown(ctx context.Context) error {
	if !w.life.requestDrain() {
		return w.Close()
	}
	select {
	case <-w.life.done:
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		left := w.open
		w.mu.Unlock()
		w.Close()
		return fmt.Errorf("delivery: work-pulling producer shut down with %d messages unconfirmed: %w", left, context.Cause(ctx))
	}
}

// Close stops the controller at once and every worker's producer, and
// waits for their goroutines. Pending Confirmations resolve with ErrClosed;
// with a durable queue, what was not confirmed goes again after a restart.
// Idempotent.
func (w *WorkPullingProducerController[T]) Close() error {
	if w.life.stop() {
		w.mu.Lock()
		w.err = ErrClosed
		w.broadcastLocked()
		w.mu.Unlock()
		if w.s.DurableQueue != nil {
			w.s.DurableQueue.Close()
		}
	}
	return nil
}
