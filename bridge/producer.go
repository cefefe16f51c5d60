package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

// runProducer runs the producer end: the source feeds the controller until
// its input ends, ctx ends or the controller fails; then the producer
// takes no more and waits for what it took to be confirmed (see Run).
func runProducer(ctx context.Context, cfg *Config, env Env, tr *tracer) error {
	log := env.Log.With("role", "producer", "stream", cfg.Stream)
	car, err := OpenCarrier(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer car.Close()
	m := newMetrics(cfg)
	end, err := openProducerEnd(ctx, car, cfg, m, log)
	if err != nil {
		return err
	}
	p, link := end.p, end.link
	src, api := newSource(cfg, env, p, m, tr, log)
	srv, err := startHTTP(cfg, m, api, log)
	if err != nil {
		p.Close()
		return err
	}
	if end.ready != nil {
		srv.setReadyWhen(end.ready)
	} else {
		srv.setReady(link)
	}

	// The controller runs until it is shut down, not until ctx ends: a
	// stop delivers what was taken first.
	ran := make(chan error, 1)
	go func() { ran <- p.Run(context.Background()) }()
	srv.setRunning(true)
	warnUnsealed(cfg, log)
	log.Info("producer started", append([]any{"producer_id", cfg.ProducerID, "source", cfg.Source, "mode", cfg.Mode, "sealed", cfg.Sealed()}, end.started()...)...)

	snd := newSender(p, m, tr)
	// The source runs aside, until its input ends or it is stopped; once
	// the controller stops, the source's Send fails too.
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	fed := make(chan error, 1)
	go func() { fed <- src.run(srcCtx, snd) }()
	var srcErr, failed error
	srcDone := false
	select {
	case srcErr = <-fed:
		srcDone = true
	case failed = <-ran: // the link or the durable queue failed: nothing more can be sent
	case <-ctx.Done():
	}
	stopping := ctx.Err() != nil

	var shutdownErr, runErr error
	if failed == nil {
		if !stopping {
			log.Info("input ended; waiting until every message is confirmed", "taken", end.taken())
		}
		drainCtx, cancel := withGrace(ctx, cfg.ShutdownTimeout)
		shutdownErr = p.Shutdown(drainCtx)
		cancel()
		runErr = <-ran
	}
	srv.setRunning(false)
	stopSource()
	// A read of stdin cannot be interrupted: a stop does not wait for that
	// source, which returns once its read does (or the process exits).
	if _, blocked := src.(stdinSource); !srcDone && !blocked {
		<-fed
	}
	snd.close()
	stopHTTP(srv, cfg)
	log.Info("producer stopped", end.summary()...)
	switch {
	case failed != nil:
		return fmt.Errorf("producer: %w", failed)
	case shutdownErr != nil && cfg.DurableDir != "":
		log.Warn("stopped with messages unconfirmed; the durable queue keeps them for the next start", "err", shutdownErr)
	case shutdownErr != nil:
		log.Error("stopped with messages unconfirmed; without BRIDGE_DURABLE_DIR they are lost", "err", shutdownErr)
	}
	switch {
	case srcErr != nil && !errors.Is(srcErr, context.Canceled) && !errors.Is(srcErr, delivery.ErrClosed):
		return fmt.Errorf("source %s: %w", cfg.Source, srcErr)
	case stopping:
		return nil // asked to stop: what could be delivered in time was
	case shutdownErr != nil:
		return shutdownErr
	}
	return runErr
}

// sendingProducer is what the sources send through: a point-to-point
// producer controller or a work-pulling one.
type sendingProducer interface {
	SendMessage(ctx context.Context, m delivery.Outgoing[[]byte]) (delivery.SeqNr, *delivery.Confirmation, error)
	TrySendAllMessages(msgs []delivery.Outgoing[[]byte]) ([]*delivery.Confirmation, error)
	ID() string
	Demand() int
}

// producerEnd is what runProducer drives.
type producerEnd interface {
	sendingProducer
	Run(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Close() error
}

// openedProducer is the producer end of either mode, with what its log
// lines say of it.
type openedProducer struct {
	p       producerEnd
	link    delivery.Link // for readiness, unless ready says otherwise
	ready   func() (string, error)
	started func() []any
	taken   func() uint64
	summary func() []any
}

// openProducerEnd opens, with BRIDGE_DURABLE_DIR, the producer's durable
// queue, then the producer end (in work pulling, the opener of its links),
// and makes the controller, which owns both; m watches it.
func openProducerEnd(ctx context.Context, car *Carrier, cfg *Config, m *metrics, log *slog.Logger) (*openedProducer, error) {
	var q delivery.DurableQueue
	if cfg.DurableDir != "" {
		dq, err := durable.Open(cfg.queueFile(), durable.Options{})
		if err != nil {
			return nil, err
		}
		q = dq
		log.Info("durable queue on", "file", dq.Path())
	}
	if cfg.WorkPulling() {
		s := cfg.WorkPullingSettings(log)
		s.DurableQueue = q
		opener := newLinkOpener(car, cfg, log)
		wp, err := delivery.NewWorkPullingProducerController[[]byte](opener, cfg.Stream, nil, s) // closes q on failure
		if err != nil {
			return nil, err
		}
		link := opener.statusOf(cfg.Stream)
		m.watchWorkPulling(wp.Stats, link)
		return &openedProducer{
			p: wp, link: link,
			// The stream's own link is the one workers take turns on to
			// say hello (on tcp each new one replaces the last), so its
			// state says nothing of whether messages can go: a served
			// worker does.
			ready: func() (string, error) {
				if len(wp.Stats().Workers) == 0 {
					return "no worker served", nil
				}
				return "", nil
			},
			started: func() []any { return []any{"max_workers", cfg.MaxWorkers, "worker_timeout", cfg.WorkerTimeout} },
			taken:   func() uint64 { return wp.Stats().Taken },
			summary: func() []any {
				st := wp.Stats()
				return []any{"taken", st.Taken, "confirmed", st.Confirmed, "handed_back", st.HandedBack, "workers_joined", st.Joined}
			},
		}, nil
	}
	settings := cfg.ProducerSettings(log)
	settings.DurableQueue = q
	p, link, err := newProducer(ctx, car, cfg, settings, log)
	if err != nil {
		return nil, err
	}
	m.watchProducer(p, link)
	return &openedProducer{
		p: p, link: link,
		started: func() []any { return []any{"epoch", p.Epoch()} },
		taken:   func() uint64 { return uint64(p.Stats().AcceptedSeqNr) },
		summary: func() []any {
			st := p.Stats()
			return []any{"taken", st.AcceptedSeqNr, "confirmed", st.ConfirmedSeqNr, "resent", st.Resent}
		},
	}, nil
}

// newSource makes the configured source, and the HTTP API that feeds the
// producer for the http source (nil for the others).
func newSource(cfg *Config, env Env, p sendingProducer, m *metrics, tr *tracer, log *slog.Logger) (source, http.Handler) {
	switch cfg.Source {
	case "generate":
		return generateSource{size: cfg.GenerateSize, count: cfg.GenerateCount, rate: cfg.GenerateRate}, nil
	case "http":
		api := &httpSource{p: p, m: m, tr: tr, durable: cfg.DurableDir != "", maxSize: cfg.MaxMessageSize, batchMax: cfg.HTTPBatchMax, log: log}
		return api, api.handler()
	}
	return stdinSource{r: env.Stdin, maxSize: cfg.MaxMessageSize}, nil
}
