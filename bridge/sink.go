package bridge

import (
	"context"
	"log/slog"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// A sink takes the consumer's deliveries: handle is given each batch (of
// at most batchSize), in order, and the batch is confirmed once handle
// returns nil. A batch handle failed on stays unconfirmed, and the consumer
// stops.
type sink interface {
	batchSize() int
	handle(ctx context.Context, batch []delivery.Delivery[[]byte]) error
}

// newSink makes the configured sink; dlq, if not nil, is where the http
// sink puts what it gives up on.
func newSink(cfg *Config, env Env, dlq deadLetterQueue, log *slog.Logger) sink {
	if cfg.Sink == "http" {
		return newHTTPSink(cfg, dlq, log)
	}
	return newStdoutSink(env.Stdout)
}

// consume runs the receive loop with snk as its handler, and observes how
// long the sink takes over each batch. It returns nil once the consumer
// has stopped and handed out everything it buffered, ctx's error if ctx
// ends first (the shutdown deadline), or why the sink failed.
func consume(ctx context.Context, c *delivery.ConsumerController[[]byte], snk sink, m *metrics) error {
	return c.Consume(ctx, snk.batchSize(), func(ctx context.Context, batch []delivery.Delivery[[]byte]) error {
		start := time.Now()
		if err := snk.handle(ctx, batch); err != nil {
			return err
		}
		m.observe(time.Since(start))
		return nil
	})
}
