package bridge

import (
	"context"
	"log/slog"
	"strings"

	amqpcarrier "github.com/bridge-mq/bridge/adapters/amqp"
	kafkacarrier "github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// openAMQP connects to RabbitMQ: a data queue and a control queue per
// stream, prefetch following the consumer's window.
func openAMQP(ctx context.Context, cfg *Config, log *slog.Logger) (*carrier, error) {
	tlsCfg, err := tlsConfig(cfg, false)
	if err != nil {
		return nil, err
	}
	c, err := amqpcarrier.New(ctx, amqpcarrier.Config{
		URL:         cfg.AMQPURL,
		TLS:         tlsCfg,
		Name:        "bridge " + cfg.Stream,
		QueuePrefix: cfg.AMQPQueuePrefix + ".",
		Exchange:    cfg.AMQPExchange,
		// A frame holds at least one message of the window, so a prefetch
		// of the window never withholds a frame the consumer waits for.
		Prefetch: min(cfg.Window, 65535),
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	return &carrier{
		name: "amqp",
		open: func(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
			return c.Link(ctx, stream, end)
		},
		deleteStream: c.DeleteStream,
		close:        c.Close,
	}, nil
}

// openKafka connects to Kafka: a data topic and a control topic per
// stream, one partition each.
func openKafka(ctx context.Context, cfg *Config, log *slog.Logger) (*carrier, error) {
	tlsCfg, err := tlsConfig(cfg, false)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(cfg.KafkaTopicPrefix, ".")
	kcfg := kafkacarrier.Config{
		Brokers:      cfg.KafkaBrokers,
		DataTopic:    prefix + ".{stream}.data",
		ControlTopic: prefix + ".{stream}.control",
		GroupID:      cfg.KafkaGroup,
		ClientID:     "bridge",
		TLS:          tlsCfg,
		Logger:       log,
	}
	if cfg.KafkaSASLMechanism != "" {
		kcfg.SASL = kafkacarrier.SASL{Mechanism: cfg.KafkaSASLMechanism, Username: cfg.KafkaSASLUser, Password: cfg.KafkaSASLPassword}
	}
	c, err := kafkacarrier.New(ctx, kcfg)
	if err != nil {
		return nil, err
	}
	return &carrier{
		name: "kafka",
		open: func(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
			return c.Link(ctx, stream, end)
		},
		deleteStream: c.DeleteStream,
		close:        c.Close,
	}, nil
}
