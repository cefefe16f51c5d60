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
	p, link, err := openProducer(ctx, car, cfg, log)
	if err != nil {
		return err
	}
	m := newMetrics(cfg)
	m.watchProducer(p, link)
	src, api := newSource(cfg, env, p, m, tr, log)
	srv, err := startHTTP(cfg, m, api, log)
	if err != nil {
		p.Close()
		return err
	}
	srv.setReady(link)

	// The controller runs until it is shut down, not until ctx ends: a
	// stop delivers what was taken first.
	ran := make(chan error, 1)
	go func() { ran <- p.Run(context.Background()) }()
	srv.setRunning(true)
	warnUnsealed(cfg, log)
	log.Info("producer started", "producer_id", cfg.ProducerID, "source", cfg.Source, "epoch", p.Epoch(), "sealed", cfg.Sealed())

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
			log.Info("input ended; waiting until every message is confirmed", "taken", p.Stats().AcceptedSeqNr)
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
	st := p.Stats()
	log.Info("producer stopped", "taken", st.AcceptedSeqNr, "confirmed", st.ConfirmedSeqNr, "resent", st.Resent)
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

// openProducer opens, with BRIDGE_DURABLE_DIR, the producer's durable
// queue, then the producer end's link, and makes the controller, which
// owns both.
func openProducer(ctx context.Context, car *Carrier, cfg *Config, log *slog.Logger) (*delivery.ProducerController[[]byte], delivery.Link, error) {
	settings := cfg.ProducerSettings(log)
	if cfg.DurableDir != "" {
		q, err := durable.Open(cfg.queueFile(), durable.Options{})
		if err != nil {
			return nil, nil, err
		}
		settings.DurableQueue = q
		log.Info("durable queue on", "file", q.Path())
	}
	return newProducer(ctx, car, cfg, settings, log)
}

// newSource makes the configured source, and the HTTP API that feeds the
// producer for the http source (nil for the others).
func newSource(cfg *Config, env Env, p *delivery.ProducerController[[]byte], m *metrics, tr *tracer, log *slog.Logger) (source, http.Handler) {
	switch cfg.Source {
	case "generate":
		return generateSource{size: cfg.GenerateSize, count: cfg.GenerateCount, rate: cfg.GenerateRate}, nil
	case "http":
		api := &httpSource{p: p, m: m, tr: tr, durable: cfg.DurableDir != "", maxSize: cfg.MaxMessageSize, batchMax: cfg.HTTPBatchMax, log: log}
		return api, api.handler()
	}
	return stdinSource{r: env.Stdin, maxSize: cfg.MaxMessageSize}, nil
}
