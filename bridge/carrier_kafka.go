package bridge

import (
	"context"
	"log/slog"
	"net"
	"strings"

	kafkacarrier "github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// KafkaConfig is the kafka carrier's configuration from BRIDGE_KAFKA_* and
// BRIDGE_TLS_*: a data topic and a control topic per stream, one partition
// each.
func (cfg *Config) KafkaConfig(log *slog.Logger) (kafkacarrier.Config, error) {
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return kafkacarrier.Config{}, err
	}
	prefix := strings.TrimSuffix(cfg.KafkaTopicPrefix, ".")
	kcfg := kafkacarrier.Config{
		Brokers:      cfg.KafkaBrokers,
		DataTopic:    prefix + "." + kafkacarrier.StreamPlaceholder + ".data",
		ControlTopic: prefix + "." + kafkacarrier.StreamPlaceholder + ".control",
		GroupID:      cfg.KafkaGroup,
		ClientID:     "bridge",
		TLS:          tlsCfg,
		Logger:       log,
	}
	if cfg.KafkaSASLMechanism != "" {
		kcfg.SASL = kafkacarrier.SASL{Mechanism: cfg.KafkaSASLMechanism, Username: cfg.KafkaSASLUser, Password: cfg.KafkaSASLPassword}
	}
	return kcfg, nil
}

func openKafka(ctx context.Context, cfg *Config, log *slog.Logger) (delivery.Carrier, func(), error) {
	kcfg, err := cfg.KafkaConfig(log)
	if err != nil {
		return nil, nil, err
	}
	c, err := kafkacarrier.New(ctx, kcfg)
	if err != nil {
		return nil, nil, err
	}
	return c, nil, nil
}

func (cfg *Config) checkKafka(c *checker) {
	if len(cfg.KafkaBrokers) == 0 {
		c.fail("KAFKA_BROKERS", "", "required with BRIDGE_TRANSPORT=kafka: host:port, comma-separated")
	}
	for _, b := range cfg.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			c.fail("KAFKA_BROKERS", b, "each broker must be host:port")
		}
	}
	if cfg.KafkaSASLMechanism != "" {
		c.oneOf("KAFKA_SASL_MECHANISM", cfg.KafkaSASLMechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
		if cfg.KafkaSASLUser == "" {
			c.fail("KAFKA_SASL_USER", "", "required with BRIDGE_KAFKA_SASL_MECHANISM")
		}
	}
}
