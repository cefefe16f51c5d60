package bridge

import (
	"context"
	"log/slog"

	"github.com/bridge-mq/bridge/delivery"
)

// openLink opens end of cfg.Stream on car, sealed with BRIDGE_SECRET (and
// BRIDGE_SECRET_PREVIOUS) when it is set: every link of the service, the
// demo and the bench's reliable modes is opened here, so none goes
// unsealed when a secret is configured.
func openLink(ctx context.Context, car *Carrier, cfg *Config, end delivery.End, log *slog.Logger) (delivery.Link, error) {
	return openStreamLink(ctx, car, cfg, cfg.Stream, end, log)
}

// openStreamLink is openLink for any stream of the service: work pulling
// opens one per worker besides cfg.Stream.
func openStreamLink(ctx context.Context, car *Carrier, cfg *Config, stream string, end delivery.End, log *slog.Logger) (delivery.Link, error) {
	secret, previous, err := cfg.streamSecrets()
	if err != nil {
		return nil, err
	}
	link, err := car.OpenLink(ctx, stream, end)
	if err != nil || secret == nil {
		return link, err
	}
	sealed, err := delivery.Seal(link, stream, end, delivery.SealConfig{Secret: secret, Previous: previous, Logger: log})
	if err != nil {
		return nil, err // Seal closed link
	}
	return sealed, nil
}

// warnUnsealed says, once at the start of an end of `bridge run`, what a
// stream without a secret allows.
func warnUnsealed(cfg *Config, log *slog.Logger) {
	if !cfg.Sealed() {
		log.Warn("frames are not sealed (no BRIDGE_SECRET): anyone who can publish to the stream's subjects, queues or topics, or reach its port, can read its messages, inject others and confirm them; see docs/security.md")
	}
}

// newConsumer opens the consumer end of cfg.Stream on car and makes its
// controller, which owns the link (returned for its status and counters).
func newConsumer(ctx context.Context, car *Carrier, cfg *Config, log *slog.Logger) (*delivery.ConsumerController[[]byte], delivery.Link, error) {
	link, err := openLink(ctx, car, cfg, delivery.ConsumerEnd, log)
	if err != nil {
		return nil, nil, err
	}
	c, err := delivery.NewConsumerController[[]byte](link, nil, cfg.ConsumerSettings(log))
	return c, link, err
}

// newProducer opens the producer end of cfg.Stream on car and makes its
// controller with settings ps, which owns the link (returned for its
// status and counters) and ps's durable queue; on a failure the queue is
// closed too.
func newProducer(ctx context.Context, car *Carrier, cfg *Config, ps delivery.ProducerSettings, log *slog.Logger) (*delivery.ProducerController[[]byte], delivery.Link, error) {
	link, err := openLink(ctx, car, cfg, delivery.ProducerEnd, log)
	if err != nil {
		if ps.DurableQueue != nil {
			ps.DurableQueue.Close()
		}
		return nil, nil, err
	}
	p, err := delivery.NewProducerController[[]byte](link, nil, ps) // closes the link and the queue on failure
	return p, link, err
}

// OpenStream opens both ends of cfg.Stream on car, the consumer's first so
// that it receives from the start, and makes their controllers (which own
// the links), sealed as `bridge run` seals them; ps are the producer's
// settings, with a durable queue if the caller opened one. On a failure it
// closes what it opened, the durable queue too. The demo and the bench use
// it.
func OpenStream(ctx context.Context, car *Carrier, cfg *Config, ps delivery.ProducerSettings, log *slog.Logger) (*delivery.ProducerController[[]byte], *delivery.ConsumerController[[]byte], error) {
	consumer, _, err := newConsumer(ctx, car, cfg, log)
	if err != nil {
		if ps.DurableQueue != nil {
			ps.DurableQueue.Close()
		}
		return nil, nil, err
	}
	producer, _, err := newProducer(ctx, car, cfg, ps, log)
	if err != nil {
		consumer.Close()
		return nil, nil, err
	}
	return producer, consumer, nil
}
