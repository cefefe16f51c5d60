package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

// Env is what a command runs with.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    *slog.Logger
}

// Run runs one end of a stream, as `bridge run` does: a producer fed by its
// source, or a consumer feeding its sink, over the configured transport.
// cfg must have passed ValidateRun.
//
// ctx ending asks for a graceful stop (cmd/bridge ends it on SIGINT and
// SIGTERM): the producer takes no more messages and waits, for up to
// ShutdownTimeout, until those it took are confirmed; the consumer hands
// its sink what it buffered, waits for the confirmations, and tells the
// producer. A producer whose input ends (stdin at its end, the generator's
// count) waits until everything is confirmed, however long, and returns.
func Run(ctx context.Context, cfg Config, env Env) error {
	if cfg.Role == "producer" {
		return runProducer(ctx, &cfg, env)
	}
	return runConsumer(ctx, &cfg, env)
}

func producerSettings(cfg *Config, log *slog.Logger) delivery.ProducerSettings {
	return delivery.ProducerSettings{
		ProducerID:          cfg.ProducerID,
		ChunkSize:           cfg.ChunkSize,
		MaxMessageSize:      cfg.MaxMessageSize,
		MaxUnconfirmedBytes: cfg.DurableMaxBytes,
		Logger:              log,
	}
}

func consumerSettings(cfg *Config, log *slog.Logger) delivery.ConsumerSettings {
	return delivery.ConsumerSettings{
		ProducerID:      cfg.ProducerID,
		Window:          cfg.Window,
		ResendMin:       cfg.ResendMin,
		ResendMax:       cfg.ResendMax,
		OnlyFlowControl: cfg.OnlyFlowControl,
		MaxMessageSize:  cfg.MaxMessageSize,
		Logger:          log,
	}
}

// queueFile is the durable queue's file for this producer and stream.
func queueFile(cfg *Config) string {
	return filepath.Join(cfg.DurableDir, fmt.Sprintf("%s.%s.queue", cfg.Stream, safeFileName(cfg.ProducerID)))
}

func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b[i] = '_'
		}
	}
	return string(b)
}

func runProducer(ctx context.Context, cfg *Config, env Env) error {
	log := env.Log.With("role", "producer", "stream", cfg.Stream)
	car, err := openCarrier(ctx, cfg, env.Log, delivery.ProducerEnd)
	if err != nil {
		return err
	}
	defer car.close()
	link, err := car.open(ctx, cfg.Stream, delivery.ProducerEnd)
	if err != nil {
		return err
	}
	settings := producerSettings(cfg, log)
	if cfg.DurableDir != "" {
		q, err := durable.Open(queueFile(cfg), durable.Options{})
		if err != nil {
			link.Close()
			return err
		}
		settings.DurableQueue = q
		log.Info("durable queue on", "file", q.Path())
	}
	p, err := delivery.NewProducerController[[]byte](link, nil, settings)
	if err != nil {
		link.Close()
		if settings.DurableQueue != nil {
			settings.DurableQueue.Close()
		}
		return err
	}
	m := newMetrics(cfg)
	m.watchProducer(p, link)

	var src source
	var api *httpSource
	switch cfg.Source {
	case "stdin":
		src = stdinSource{r: env.Stdin, maxSize: cfg.MaxMessageSize}
	case "generate":
		src = generateSource{size: cfg.GenerateSize, count: cfg.GenerateCount, rate: cfg.GenerateRate}
	case "http":
		api = &httpSource{p: p, m: m, durable: cfg.DurableDir != "", maxSize: cfg.MaxMessageSize, log: log}
		src = api
	}
	var handler http.Handler
	if api != nil {
		handler = api.handler()
	}
	srv, err := startHTTP(cfg, m, handler, log)
	if err != nil {
		p.Close()
		return err
	}
	srv.setReady(link)

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(runCtx) }()
	srv.setRunning(true)
	log.Info("producer started", "producer_id", cfg.ProducerID, "source", cfg.Source, "epoch", p.Epoch())

	snd := newSender(p, m)
	// The source runs aside: a read of stdin cannot be interrupted, and a
	// stop must not wait for it.
	fed := make(chan error, 1)
	go func() { fed <- src.run(ctx, snd) }()
	var srcErr error
	var stopping bool
	select {
	case srcErr = <-fed:
		stopping = ctx.Err() != nil
	case err := <-ran:
		// The controller failed (the link, the durable queue): nothing more
		// can be sent.
		srv.stop(context.Background())
		snd.close()
		return fmt.Errorf("producer: %w", err)
	case <-ctx.Done():
		stopping = true
	}

	// Graceful stop: take no more; wait for the confirmations.
	var shutdownErr error
	if stopping {
		shutdownErr = shutdownWithin(cfg.ShutdownTimeout, p.Shutdown)
	} else {
		log.Info("input ended; waiting until every message is confirmed", "taken", p.Stats().AcceptedSeqNr)
		shutdownErr = p.Shutdown(ctx) // until done, or a signal...
		if ctx.Err() != nil {
			shutdownErr = shutdownWithin(cfg.ShutdownTimeout, p.Shutdown) // ...which gives it ShutdownTimeout more
		}
	}
	srv.setRunning(false)
	stopRun()
	runErr := <-ran
	snd.close()
	stopHTTP(srv, cfg)
	st := p.Stats()
	log.Info("producer stopped", "taken", st.AcceptedSeqNr, "confirmed", st.ConfirmedSeqNr, "resent", st.Resent)
	if shutdownErr != nil {
		if cfg.DurableDir != "" {
			log.Warn("stopped with messages unconfirmed; the durable queue keeps them for the next start", "err", shutdownErr)
		} else {
			log.Error("stopped with messages unconfirmed; without BRIDGE_DURABLE_DIR they are lost", "err", shutdownErr)
		}
	}
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) && !errors.Is(srcErr, delivery.ErrClosed) {
		return fmt.Errorf("source %s: %w", cfg.Source, srcErr)
	}
	if stopping {
		return nil // asked to stop: what could be delivered in time was
	}
	if shutdownErr != nil {
		return shutdownErr
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

func runConsumer(ctx context.Context, cfg *Config, env Env) error {
	log := env.Log.With("role", "consumer", "stream", cfg.Stream)
	car, err := openCarrier(ctx, cfg, env.Log, delivery.ConsumerEnd)
	if err != nil {
		return err
	}
	defer car.close()
	link, err := car.open(ctx, cfg.Stream, delivery.ConsumerEnd)
	if err != nil {
		return err
	}
	c, err := delivery.NewConsumerController[[]byte](link, nil, consumerSettings(cfg, log))
	if err != nil {
		link.Close()
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

	var snk sink = stdoutSink{w: env.Stdout}
	if cfg.Sink == "http" {
		snk = newHTTPSink(cfg, log)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()
	srv.setRunning(true)
	log.Info("consumer started", "sink", cfg.Sink, "window", cfg.Window)

	// The sink works until the consumer stops; a stop gives it until the
	// shutdown deadline to finish what is buffered.
	sinkCtx, stopSink := context.WithCancel(context.Background())
	defer stopSink()
	drained := make(chan error, 1)
	go func() { drained <- snk.run(sinkCtx, c, m) }()

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
		err := shutdownWithin(cfg.ShutdownTimeout, c.Shutdown)
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
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("consumer: %w", runErr)
	}
	return nil
}

// shutdownWithin calls shutdown with a context that ends after timeout.
func shutdownWithin(timeout time.Duration, shutdown func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return shutdown(ctx)
}

// stopHTTP stops the HTTP server, letting requests in progress finish for
// up to ShutdownTimeout.
func stopHTTP(srv *httpServer, cfg *Config) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	srv.stop(ctx)
}
