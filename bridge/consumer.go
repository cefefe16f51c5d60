package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runConsumer runs the consumer end: the sink takes what the controller
// delivers until the sink fails, the controller stops, or ctx ends; then
// the consumer delivers what it buffered, for up to ShutdownTimeout (see
// Run).
func runConsumer(ctx context.Context, cfg *Config, env Env, tr *tracer) error {
	log := env.Log.With("role", "consumer", "stream", cfg.Stream)
	car, err := OpenCarrier(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer car.Close()
	c, link, err := openConsumerEnd(ctx, car, cfg, log)
	if err != nil {
		return err
	}
	m := newMetrics(cfg)
	m.watchConsumer(c, link)
	srv, err := startHTTP(cfg, m, nil, log)
	if err != nil {
		c.Close()
		return err
	}
	srv.setReady(link)

	dlq, err := openDLQ(ctx, cfg, log)
	if err != nil {
		c.Close()
		stopHTTP(srv, cfg)
		return err
	}
	if dlq != nil {
		defer dlq.Close()
		m.watchDLQ(dlq.stats)
		log.Info("dead-letter queue on", "dlq", dlq.String(), "max_attempts", cfg.SinkMaxAttempts)
	}
	snk := newSink(cfg, env, dlq, tr != nil, log)
	if hs, ok := snk.(*httpSink); ok {
		m.watchSink(hs.failedAttempts, hs.deadLetters)
	}
	ran := make(chan error, 1)
	go func() { ran <- c.Run(context.Background()) }() // until it is shut down or closed
	srv.setRunning(true)
	warnUnsealed(cfg, log)
	log.Info("consumer started", "sink", cfg.Sink, "window", cfg.Window, "sealed", cfg.Sealed(), "mode", cfg.Mode, "worker_id", cfg.WorkerID)

	// The sink works until the consumer stops; a stop gives it until the
	// shutdown deadline to finish what is buffered.
	sinkCtx, stopSink := context.WithCancel(context.Background())
	defer stopSink()
	drained := make(chan error, 1)
	go func() { drained <- consume(sinkCtx, c, snk, m, tr) }()

	var sinkErr, runErr error
	select {
	case sinkErr = <-drained:
		// The sink failed (or the consumer stopped by itself): stop.
		c.Close()
		runErr = <-ran
	case runErr = <-ran:
		sinkErr = <-drained
	case <-ctx.Done():
		deadline := time.AfterFunc(cfg.ShutdownTimeout, stopSink)
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err := c.Shutdown(shutdownCtx)
		cancel()
		deadline.Stop()
		if err != nil {
			log.Warn("stopped before the sink took everything buffered; the carrier keeps or resends it", "err", err)
		}
		stopSink()
		sinkErr = <-drained
		runErr = <-ran
		if errors.Is(sinkErr, context.Canceled) {
			sinkErr = nil
		}
	}
	srv.setRunning(false)
	stopHTTP(srv, cfg)
	st := c.Stats()
	log.Info("consumer stopped", "delivered", st.Delivered, "confirmed", st.ConfirmedSeqNr, "duplicates", st.Duplicates)
	if sinkErr != nil {
		return fmt.Errorf("sink %s: %w", cfg.Sink, sinkErr)
	}
	if runErr != nil {
		return fmt.Errorf("consumer: %w", runErr)
	}
	return nil
}
