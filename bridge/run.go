package bridge

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Env is what a command runs with.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    *slog.Logger
	// TracerProvider, if set, is what the service traces with, whatever
	// the configuration says (a test's, or an embedding program's, which
	// flushes it); nil: OpenTelemetry's SDK when Config.Tracing is on.
	TracerProvider trace.TracerProvider
}

// Run runs one end of a stream, as `bridge run` does: a producer fed by its
// source, or a consumer feeding its sink, over the configured transport.
// cfg must have passed ValidateRun. With BRIDGE_INSECURE, it warns of each
// exposure ValidateRun let through.
//
// ctx ending asks for a graceful stop (cmd/bridge ends it on SIGINT and
// SIGTERM): the producer takes no more messages and waits, for up to
// ShutdownTimeout, until those it took are confirmed; the consumer hands
// its sink what it buffered, waits for the confirmations, and tells the
// producer. A producer whose input ends (stdin at its end, the generator's
// count) waits until everything is confirmed, however long, and returns;
// a stop asked for meanwhile gives it ShutdownTimeout more.
func Run(ctx context.Context, cfg Config, env Env) error {
	if cfg.Insecure {
		for _, e := range cfg.exposures() {
			env.Log.Warn("BRIDGE_INSECURE=true: "+e.what, "var", envPrefix+"_"+e.name, "value", e.value)
		}
	}
	tr, stopTracing, err := tracing(ctx, &cfg, env)
	if err != nil {
		return err
	}
	defer stopTracing() // after the end has stopped: its last spans flushed
	if cfg.Role == "producer" {
		return runProducer(ctx, &cfg, env, tr)
	}
	return runConsumer(ctx, &cfg, env, tr)
}

// withGrace returns a context that ends grace after ctx does (at once if
// ctx has ended: grace from now), for a graceful stop: wait as long as
// nobody asks to stop, and ShutdownTimeout once somebody does. Its cause
// is context.DeadlineExceeded. It starts a goroutine that ends with it.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	g, cancel := context.WithCancelCause(context.Background())
	go func() {
		select {
		case <-ctx.Done():
		case <-g.Done():
			return
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(context.DeadlineExceeded)
		case <-g.Done():
		}
	}()
	return g, func() { cancel(context.Canceled) }
}

// stopHTTP stops the HTTP server, letting requests in progress finish for
// up to ShutdownTimeout.
func stopHTTP(srv *httpServer, cfg *Config) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	srv.stop(ctx)
}
