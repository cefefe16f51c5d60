package bridge

import (
	"context"
	"log/slog"
	"net/url"

	amqpcarrier "github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// AMQPConfig is the amqp carrier's configuration from BRIDGE_AMQP_* and
// BRIDGE_TLS_*: a data queue and a control queue per stream, prefetch
// following the consumer's window.
func (cfg *Config) AMQPConfig(log *slog.Logger) (amqpcarrier.Config, error) {
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return amqpcarrier.Config{}, err
	}
	return amqpcarrier.Config{
		URL:         cfg.AMQPURL,
		TLS:         tlsCfg,
		Name:        "bridge " + cfg.Stream,
		QueuePrefix: cfg.AMQPQueuePrefix + ".",
		Exchange:    cfg.AMQPExchange,
		// A frame holds at least one message of the window, so a prefetch
		// of the window never withholds a frame the consumer waits for.
		Prefetch: min(cfg.Window, 65535),
		Logger:   log,
	}, nil
}

func openAMQP(ctx context.Context, cfg *Config, log *slog.Logger) (delivery.Carrier, func(), error) {
	acfg, err := cfg.AMQPConfig(log)
	if err != nil {
		return nil, nil, err
	}
	c, err := amqpcarrier.New(ctx, acfg)
	if err != nil {
		return nil, nil, err
	}
	return c, nil, nil
}

func (cfg *Config) checkAMQP(c *checker) {
	if cfg.AMQPURL == "" {
		c.fail("AMQP_URL", "", "required with BRIDGE_TRANSPORT=amqp, such as amqp://guest:guest@localhost:5672/")
	} else if u, err := url.Parse(cfg.AMQPURL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		c.fail("AMQP_URL", redact(cfg.AMQPURL), "must be an amqp:// or amqps:// URL")
	} else if u.Scheme == "amqp" && cfg.tlsOn() {
		// amqp091-go speaks TLS to amqps:// URLs only: the TLS settings
		// would be ignored, and the credentials sent in clear.
		c.fail("AMQP_URL", redact(cfg.AMQPURL), "BRIDGE_TLS* settings need an amqps:// URL: over amqp:// they would be ignored and the credentials sent in clear")
	}
}
