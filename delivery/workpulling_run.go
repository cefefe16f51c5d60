package delivery

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// joinEvery is how often, at most, the producer opens a new worker's
// stream: each costs a link (on a broker, queues or topics), so a flood of
// hellos under made-up IDs must not make it open them faster. A worker
// repeats its hello every HeartbeatInterval until it is served.
const joinEvery = 5 * time.Millisecond

type joinResult struct {
	id   string
	link Link
	err  error
}

// wpRun is the Run goroutine's own state.
type wpRun struct {
	joining  map[string]bool
	joins    chan joinResult
	openWG   sync.WaitGroup
	lastJoin time.Time
	warnings throttle // hellos refused, frames of the wrong mode
	draining bool
}

func (w *WorkPullingProducerController[T]) run(ctx context.Context) (err error) {
	if w.store != nil {
		if err := w.recover(ctx); err != nil {
			w.failAll(ErrClosed)
			w.s.DurableQueue.Close()
			return err
		}
		w.store.start()
	}
	reg, err := w.opener.OpenLink(ctx, w.stream, ProducerEnd)
	if err != nil {
		w.stopAll(ErrClosed)
		return fmt.Errorf("delivery: work-pulling producer: open stream %s: %w", w.stream, err)
	}
	w.log.Info("work-pulling producer started", "max_workers", w.s.MaxWorkers, "worker_timeout", w.s.WorkerTimeout)

	frames := make(chan Frame, 16)
	regErr := make(chan error, 1)
	readCtx, cancelRead := context.WithCancel(context.Background())
	var readWG sync.WaitGroup
	readWG.Add(1)
	go func() {
		defer readWG.Done()
		for {
			f, err := reg.Receive(readCtx)
			if err != nil {
				if readCtx.Err() == nil {
					regErr <- err
				}
				return
			}
			select {
			case frames <- f:
			case <-readCtx.Done():
				return
			}
		}
	}()
	workerCtx, cancelWorkers := context.WithCancel(context.Background())
	r := &wpRun{joining: map[string]bool{}, joins: make(chan joinResult, w.s.MaxWorkers)}
	check := time.NewTicker(max(w.s.WorkerTimeout/4, time.Millisecond))
	defer check.Stop()
	var storeFailed <-chan error
	if w.store != nil {
		storeFailed = w.store.failed
	}
	drain := w.life.drain
loop:
	for {
		w.mu.Lock()
		var changed <-chan struct{}
		if len(w.requeue) > 0 {
			changed = w.changed
		}
		w.mu.Unlock()
		select {
		case f := <-frames:
			w.onStreamFrame(r, f)
			if f.Release != nil {
				f.Release()
			}
		case j := <-r.joins:
			r.openWG.Done()
			delete(r.joining, j.id)
			switch {
			case j.err != nil:
				w.log.Warn("cannot open a worker's stream; it will say hello again", "worker_id", j.id, "err", j.err)
			case r.draining:
				j.link.Close()
			default:
				if err := w.addWorker(workerCtx, j.id, j.link); err != nil {
					w.log.Error("cannot serve a worker", "worker_id", j.id, "err", err)
				}
			}
		case <-changed:
		case <-w.kick:
			w.reap(false)
		case <-check.C:
			w.reap(true)
		case <-drain:
			drain = nil
			r.draining = true
			w.mu.Lock()
			w.err = ErrClosed
			w.broadcastLocked()
			w.mu.Unlock()
		case err = <-regErr:
			w.log.Error("the stream's link failed; work-pulling producer stops", "err", err)
			break loop
		case err = <-storeFailed:
			w.log.Error("durable queue failed; work-pulling producer stops", "err", err)
			break loop
		case <-w.life.quit:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
		w.handOutRequeued()
		if r.draining {
			w.mu.Lock()
			open := w.open
			w.mu.Unlock()
			if open == 0 {
				break loop
			}
		}
	}
	cancelRead()
	reg.Close()
	readWG.Wait()
	go func() { r.openWG.Wait(); close(r.joins) }()
	for j := range r.joins {
		if j.link != nil {
			j.link.Close()
		}
	}
	w.mu.Lock()
	all := make([]*wpWorker, 0, len(w.workers))
	for _, wk := range w.workers {
		all = append(all, wk)
	}
	w.mu.Unlock()
	for _, wk := range all {
		w.removeWorker(wk, "the producer stops", nil)
	}
	cancelWorkers()
	w.stopAll(ErrClosed)
	w.log.Info("work-pulling producer stopped", "err", err)
	return err
}

// stopAll refuses every send from now on, fails what is pending, and
// stores what the durable queue has yet to.
func (w *WorkPullingProducerController[T]) stopAll(err error) {
	w.failAll(err)
	if w.store != nil {
		if serr := w.store.finish(); serr != nil {
			w.log.Error("durable queue: storing on the way out failed", "err", serr)
		}
		w.s.DurableQueue.Close()
	}
}

func (w *WorkPullingProducerController[T]) failAll(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	w.broadcastLocked()
	for _, m := range w.taken {
		if !m.done && m.reply != nil {
			m.reply.fail(err)
		}
	}
}

// onStreamFrame acts on a frame of the stream's producer end: a worker's
// hello, or a point-to-point consumer's frame, refused.
func (w *WorkPullingProducerController[T]) onStreamFrame(r *wpRun, f Frame) {
	now := time.Now()
	if !isWorkFrame(f.Data) {
		w.c.wrongMode.Add(1)
		if ok, since := r.warnings.allow(now); ok {
			reason := "not a frame of this protocol"
			if _, _, err := parseFrame(f.Data); err == nil {
				reason = "a point-to-point consumer's frame: run it as a worker (BRIDGE_MODE=work-pulling, a worker ID)"
			} else {
				reason = err.Error()
			}
			w.log.Warn("refused a frame on the work-pulling stream", "reason", reason, "refused_since_last_log", since)
		}
		return
	}
	m, err := parseWorkFrame(f.Data)
	if err != nil || m.typ != workHello {
		w.c.badFrames.Add(1)
		return
	}
	w.mu.Lock()
	wk, known := w.workers[m.workerID]
	full := len(w.workers)+len(r.joining) >= w.s.MaxWorkers
	w.mu.Unlock()
	switch {
	case known:
		wk.link.lastHeard.Store(now.UnixNano())
	case r.joining[m.workerID] || r.draining:
	case full:
		w.c.hellosRefused.Add(1)
		if ok, since := r.warnings.allow(now); ok {
			w.log.Warn("refused a worker: MaxWorkers are served", "worker_id", m.workerID, "max_workers", w.s.MaxWorkers, "refused_since_last_log", since)
		}
	case now.Sub(r.lastJoin) < joinEvery:
		w.c.hellosIgnored.Add(1)
	default:
		r.lastJoin = now
		r.joining[m.workerID] = true
		r.openWG.Add(1)
		id := m.workerID
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), w.s.WorkerTimeout)
			defer cancel()
			link, err := w.opener.OpenLink(ctx, WorkerStream(w.stream, id), ProducerEnd)
			r.joins <- joinResult{id: id, link: link, err: err}
		}()
	}
}

// reap removes the workers that left, whose producer stopped (its link
// failed) and, with silent, those silent past WorkerTimeout.
func (w *WorkPullingProducerController[T]) reap(silent bool) {
	now := time.Now()
	w.mu.Lock()
	all := make([]*wpWorker, 0, len(w.workers))
	for _, wk := range w.workers {
		all = append(all, wk)
	}
	w.mu.Unlock()
	for _, wk := range all {
		if lv := wk.link.leave.Load(); lv != nil {
			w.removeWorker(wk, "it left", lv)
			continue
		}
		select {
		case <-wk.runDone:
			w.removeWorker(wk, fmt.Sprintf("its stream failed: %v", wk.runErr), nil)
			continue
		default:
		}
		if heard := time.Unix(0, wk.link.lastHeard.Load()); silent && now.Sub(heard) > w.s.WorkerTimeout {
			w.c.timedOut.Add(1)
			w.removeWorker(wk, fmt.Sprintf("silent for %v", now.Sub(heard).Round(time.Millisecond)), nil)
		}
	}
}
