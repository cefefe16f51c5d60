package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// LinkOpener opens the end of a stream: every Carrier is one. A work-pulling
// producer and its workers open the links they need through it, the
// registration stream's and one per worker; to seal them, give an opener
// that seals what it opens (see Seal).
type LinkOpener interface {
	OpenLink(ctx context.Context, stream string, end End) (Link, error)
}

// Defaults of work pulling.
const (
	// DefaultMaxWorkers bounds the workers a work-pulling producer serves
	// at once: each costs a stream (on a broker, its queues or topics) and
	// a producer controller.
	DefaultMaxWorkers = 64
	// DefaultHeartbeatInterval is how often each end of a worker's stream
	// says it is alive, and how often a worker not yet served says hello.
	DefaultHeartbeatInterval = time.Second
	// DefaultWorkerTimeout is how long a worker's stream may be silent
	// before its end takes the other for dead: the producer hands the
	// worker's unconfirmed messages to other workers, a worker says hello
	// again (the producer may have restarted).
	DefaultWorkerTimeout = 5 * time.Second
	// DefaultWorkerWindow is a worker's demand, its ConsumerSettings.Window
	// when that is 0: smaller than a point-to-point consumer's
	// DefaultWindow, because the producer hands each worker up to its
	// demand, and messages handed to a slow or dying worker wait for it
	// while other workers could take them.
	DefaultWorkerWindow = 1000
)

// WorkerSettings configure a worker of a work-pulling stream: a
// ConsumerController with a worker ID.
type WorkerSettings struct {
	// ConsumerSettings configure the worker's ConsumerController, as for a
	// point-to-point consumer; its Window is the worker's demand, default
	// DefaultWorkerWindow.
	ConsumerSettings

	// WorkerID names the worker: required, see CheckWorkerID. Keep it
	// stable across restarts: a worker that comes back under the same ID
	// gets its own unconfirmed messages again, if the producer did not yet
	// hand them to another worker.
	WorkerID string

	// HeartbeatInterval is how often the worker tells the producer it is
	// alive, and says hello while the producer does not serve it. It must
	// be below half the producer's WorkerTimeout. Default
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration

	// ProducerTimeout is how long the worker hears nothing from the
	// producer before it says hello again. Default DefaultWorkerTimeout.
	ProducerTimeout time.Duration
}

func (s WorkerSettings) withDefaults() (WorkerSettings, error) {
	var errs settingErrors
	if s.Window == 0 {
		s.Window = DefaultWorkerWindow
	}
	cs, err := s.ConsumerSettings.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	s.ConsumerSettings = cs
	if err := CheckWorkerID(s.WorkerID); err != nil {
		errs.add(&SettingError{Setting: "WorkerID", Value: s.WorkerID, Reason: err.Error()})
	}
	errs.duration(&s.HeartbeatInterval, "HeartbeatInterval", DefaultHeartbeatInterval)
	errs.duration(&s.ProducerTimeout, "ProducerTimeout", DefaultWorkerTimeout)
	return s, errs.err()
}

// NewWorkerController returns the ConsumerController of worker
// settings.WorkerID on the work-pulling stream named stream: it opens the
// consumer end of the worker's own stream (WorkerStream) through opener
// and receives there, as a point-to-point consumer does, what the producer
// hands this worker. Use it as any ConsumerController: Receive, Confirm,
// Run, Shutdown, Close.
//
// Once Run starts, the worker's link runs one goroutine more, which says
// hello on stream (through a consumer end it opens while the producer does
// not serve it, and closes once it does) and sends a heartbeat on the
// worker's stream every HeartbeatInterval. When the controller stops, the
// worker tells the producer it leaves, and how far it confirmed: the
// producer hands everything else to other workers at once (after Shutdown,
// that is only what the worker had not yet taken; after Close, also what it
// had taken and not confirmed).
func NewWorkerController[T any](ctx context.Context, opener LinkOpener, stream string, serializer Serializer[T], settings WorkerSettings) (*ConsumerController[T], error) {
	s, err := settings.withDefaults()
	if err != nil {
		return nil, err
	}
	if opener == nil {
		return nil, &SettingError{Setting: "opener", Value: nil, Reason: "required"}
	}
	own, err := opener.OpenLink(ctx, WorkerStream(stream, s.WorkerID), ConsumerEnd)
	if err != nil {
		return nil, fmt.Errorf("delivery: worker %s: open its stream: %w", s.WorkerID, err)
	}
	wl := &workerLink{
		inner: own, opener: opener, stream: stream, s: s,
		log:  s.Logger.With("worker_id", s.WorkerID, "stream", stream),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	c, err := NewConsumerController(wl, serializer, s.ConsumerSettings)
	if err != nil {
		return nil, err // it closed wl, which closed own
	}
	wl.stats = &c.stats
	return c, nil
}

// workerLink is the worker's end of its stream, with what work pulling adds:
// hellos until the producer serves the worker, heartbeats, and a leave when
// it closes. Work frames from the producer (heartbeats) are taken off here;
// the controller sees only its protocol's frames.
type workerLink struct {
	inner  Link
	opener LinkOpener
	stream string
	s      WorkerSettings
	log    *slog.Logger
	stats  *consumerCounters // the controller's, for the leave

	sendMu    sync.Mutex // the controller's writer and the heartbeats share inner
	lastHeard atomic.Int64
	start     sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	started   bool
}

var (
	_ FrameSizeLimiter = (*workerLink)(nil)
	_ StatusReporter   = (*workerLink)(nil)
)

func (l *workerLink) Send(ctx context.Context, frame []byte) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	return l.inner.Send(ctx, frame)
}

func (l *workerLink) Receive(ctx context.Context) (Frame, error) {
	l.start.Do(func() {
		l.started = true
		go l.keep()
	})
	for {
		f, err := l.inner.Receive(ctx)
		if err != nil {
			return f, err
		}
		l.lastHeard.Store(time.Now().UnixNano())
		if !isWorkFrame(f.Data) {
			return f, nil
		}
		// A heartbeat, or what a later version adds: nothing to act on.
		if f.Release != nil {
			f.Release()
		}
	}
}

// keep says hello while the producer does not serve the worker, and sends
// heartbeats, until the link closes.
func (l *workerLink) keep() {
	defer close(l.done)
	var reg Link
	defer func() {
		if reg != nil {
			reg.Close()
		}
	}()
	tick := time.NewTicker(l.s.HeartbeatInterval)
	defer tick.Stop()
	hello := encodeHello(l.s.WorkerID)
	heartbeat := encodeHeartbeat()
	served := false
	for {
		heard := time.Unix(0, l.lastHeard.Load())
		switch now := time.Now(); {
		case !served && !heard.IsZero() && now.Sub(heard) < l.s.ProducerTimeout:
			served = true
			l.log.Info("worker served by the producer")
			if reg != nil {
				reg.Close() // on tcp, the stream's connection is for the next worker to join
				reg = nil
			}
		case served && now.Sub(heard) >= l.s.ProducerTimeout:
			served = false
			l.log.Warn("worker heard nothing from the producer; saying hello again", "silent_for", now.Sub(heard).Round(time.Millisecond))
		}
		if !served {
			if reg == nil {
				ctx, cancel := context.WithTimeout(context.Background(), l.s.ProducerTimeout)
				var err error
				reg, err = l.opener.OpenLink(ctx, l.stream, ConsumerEnd)
				cancel()
				if err != nil {
					reg = nil
					l.log.Warn("worker cannot open the stream to say hello; retrying", "err", err)
				}
			}
			if reg != nil && l.send(reg, hello) != nil {
				// Workers take turns on the stream's consumer end (on tcp and
				// the memory carrier a new link of an end replaces the last):
				// open it again for the next hello.
				reg.Close()
				reg = nil
			}
		}
		// A writer that holds the link is sending (or waiting for a
		// connection): the heartbeat is not needed, and must not wait.
		if l.sendMu.TryLock() {
			l.send(l.inner, heartbeat)
			l.sendMu.Unlock()
		}
		select {
		case <-tick.C:
		case <-l.stop:
			return
		}
	}
}

func (l *workerLink) send(link Link, frame []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.s.HeartbeatInterval)
	defer cancel()
	err := link.Send(ctx, frame)
	if err != nil {
		l.log.Debug("worker: a hello, heartbeat or leave was not sent", "err", err)
	}
	return err
}

// Close tells the producer the worker leaves, and how far it confirmed,
// then closes the links.
func (l *workerLink) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.stop)
		l.start.Do(func() {}) // no keeper starts after this; started is settled
		if l.started {
			<-l.done
		}
		if l.stats != nil {
			if p := l.stats.producer.Load(); p != nil {
				l.leave(encodeLeave(p.epoch, SeqNr(l.stats.confirmed.Load())))
			}
		}
		err = l.inner.Close()
	})
	return err
}

// leave tells the producer the worker leaves, again every 100 ms, until
// the producer says bye or twice HeartbeatInterval passed. The controller
// has stopped reading the link: what else comes is dropped unreleased, and
// a broker gives it to the next consumer.
func (l *workerLink) leave(frame []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*l.s.HeartbeatInterval)
	defer cancel()
	for ctx.Err() == nil {
		l.sendMu.Lock()
		l.send(l.inner, frame)
		l.sendMu.Unlock()
		rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		bye, err := l.awaitBye(rctx)
		rcancel()
		if bye {
			return
		}
		if err != nil && rctx.Err() == nil {
			return // the link is gone: the producer notices the silence
		}
	}
	l.log.Warn("worker left without the producer's bye: the producer hands its messages to others once WorkerTimeout passes")
}

// awaitBye receives until the producer's bye, an error, or ctx's end.
func (l *workerLink) awaitBye(ctx context.Context) (bool, error) {
	for {
		f, err := l.inner.Receive(ctx)
		if err != nil {
			return false, err
		}
		if isWorkFrame(f.Data) {
			if m, err := parseWorkFrame(f.Data); err == nil && m.typ == workBye {
				return true, nil
			}
		}
	}
}

func (l *workerLink) MaxFrameSize() int {
	if f, ok := l.inner.(FrameSizeLimiter); ok {
		return f.MaxFrameSize()
	}
	return 0
}

func (l *workerLink) Status() LinkStatus {
	if s, ok := l.inner.(StatusReporter); ok {
		return s.Status()
	}
	return LinkStatus{Connected: true}
}
