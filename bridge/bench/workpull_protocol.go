package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench/report"
	"github.com/bridge-mq/bridge/delivery"
)

// workPullingMechanism is the protocol's work pulling over t's carrier, as
// `bridge run` runs it with BRIDGE_MODE=work-pulling: a work-pulling
// producer and workers, their links opened by the service's opener (sealed
// when a secret is set). Each worker's stream is numbered and resent, so a
// worker gets what it is handed in order and once.
func workPullingMechanism(t *target, w workPlan, log *slog.Logger) workMechanism {
	return workMechanism{
		mode:     report.WorkPulling,
		client:   "the protocol's work pulling over the " + t.name + " carrier, as the service runs it (BRIDGE_MODE=work-pulling)",
		ordering: report.PerWorker,
		strict:   true,
		open: func(ctx context.Context, stream string, workers int, tally *workTally) (*workPipe, error) {
			return workPullingPipe(ctx, t.car, t.cfg, stream, workers, tally, log)
		},
	}
}

var errWorkerKilled = errors.New("bench: the worker was killed")

// killableOpener opens one worker's links; kill closes them all and
// refuses new ones, as the death of the worker's process would: its
// sockets close, and it says nothing more.
type killableOpener struct {
	delivery.LinkOpener

	mu    sync.Mutex
	links []delivery.Link
	dead  bool
}

func (o *killableOpener) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dead {
		return nil, errWorkerKilled
	}
	l, err := o.LinkOpener.OpenLink(ctx, stream, end)
	if err == nil {
		o.links = append(o.links, l)
	}
	return l, err
}

func (o *killableOpener) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dead = true
	for _, l := range o.links {
		l.Close()
	}
}

// workPullingPipe starts a work-pulling producer on stream and workers
// workers, each receiving, running tally's sink and confirming, one
// message at a time.
func workPullingPipe(ctx context.Context, car *bridge.Carrier, cfg bridge.Config, stream string, workers int, tally *workTally, log *slog.Logger) (*workPipe, error) {
	cfg.Stream, cfg.ProducerID = stream, stream
	log = log.With("stream", stream)
	opener := bridge.StreamOpener(car, &cfg, log)
	producer, err := delivery.NewWorkPullingProducerController[[]byte](opener, stream, nil, cfg.WorkPullingSettings(log))
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { producer.Run(runCtx) })
	p := &workPipe{failed: make(chan error, 1)}
	type worker struct {
		c      *delivery.ConsumerController[[]byte]
		opener *killableOpener
		cancel context.CancelFunc
	}
	var ws []worker
	p.close = func() {
		// The workers first, side by side: each leaves and waits for the
		// producer's bye, which a closed producer would never send.
		var closing sync.WaitGroup
		for _, w := range ws {
			closing.Go(func() { w.c.Close(); w.cancel() })
		}
		closing.Wait()
		producer.Close()
		stop()
		wg.Wait()
	}
	for k := range workers {
		cfg.WorkerID = fmt.Sprint("bench-w", k)
		o := &killableOpener{LinkOpener: opener}
		c, err := delivery.NewWorkerController[[]byte](ctx, o, stream, nil, cfg.WorkerSettings(log.With("worker_id", cfg.WorkerID)))
		if err != nil {
			p.close()
			return nil, fmt.Errorf("worker %d: %w", k, err)
		}
		wctx, cancel := context.WithCancel(runCtx)
		ws = append(ws, worker{c: c, opener: o, cancel: cancel})
		wg.Go(func() { c.Run(wctx) })
		wg.Go(func() {
			for {
				d, err := c.Receive(wctx)
				if err != nil {
					return
				}
				if tally.work(k, k, d.Message) {
					d.Confirm()
				}
			}
		})
	}
	p.send = func(ctx context.Context, msg []byte) error {
		_, err := producer.Send(ctx, msg)
		return err
	}
	p.ready = func(ctx context.Context) error {
		// A pass starts once every worker granted its window, as the broker's
		// competing consumers start once subscribed with their prefetch, so
		// that neither hands its first burst to the workers that were first.
		for producer.Stats().GrantedWorkers() < workers {
			select {
			case <-time.After(5 * time.Millisecond): // the producer tells no event when a worker grants: its Stats say
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	p.kill = func() {
		ws[0].opener.kill()
		ws[0].cancel()
	}
	p.resends = func() uint64 { return producer.Stats().Resent }
	return p, nil
}
