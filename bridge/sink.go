package bridge

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

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
// With traced, the http sink counts each message's attempts for its span.
func newSink(cfg *Config, env Env, dlq deadLetterQueue, traced bool, log *slog.Logger) sink {
	if cfg.Sink == "http" {
		s := newHTTPSink(cfg, dlq, log)
		if traced {
			s.tries = make(map[delivery.SeqNr]int)
		}
		return s
	}
	return newStdoutSink(env.Stdout)
}

// attemptCounter is a sink that tells how many tries the last batch's
// messages took (a sink that is not one takes one each).
type attemptCounter interface {
	attempts(seqNr delivery.SeqNr) int
}

// consume runs the receive loop with snk as its handler, observes how
// long the sink takes over each batch, and traces each message tr samples
// from the sink's start on it until its confirmation. It returns nil once the consumer
// has stopped and handed out everything it buffered, ctx's error if ctx
// ends first (the shutdown deadline), or why the sink failed.
func consume(ctx context.Context, c *delivery.ConsumerController[[]byte], snk sink, m *metrics, tr *tracer) error {
	var spans []trace.Span // batch's, nil for those not traced
	counter, _ := snk.(attemptCounter)
	return c.Consume(ctx, snk.batchSize(), func(ctx context.Context, batch []delivery.Delivery[[]byte]) error {
		start := time.Now()
		if tr != nil {
			spans = spans[:0]
			for i := range batch {
				spans = append(spans, tr.process(&batch[i]))
			}
		}
		err := snk.handle(ctx, batch)
		for i, span := range spans {
			if span == nil {
				continue
			}
			attempts := 1
			if counter != nil {
				attempts = counter.attempts(batch[i].SeqNr)
			}
			processed(span, attempts, err)
			spans[i] = nil
		}
		if err != nil {
			return err
		}
		m.observe(time.Since(start))
		return nil
	})
}
