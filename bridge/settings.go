package bridge

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/bridge-mq/bridge/delivery"
)

// ProducerSettings are the protocol settings of this configuration's
// producer (no durable queue: the producer end opens it).
func (cfg *Config) ProducerSettings(log *slog.Logger) delivery.ProducerSettings {
	return delivery.ProducerSettings{
		ProducerID:          cfg.ProducerID,
		ChunkSize:           cfg.ChunkSize,
		MaxMessageSize:      cfg.MaxMessageSize,
		MaxUnconfirmedBytes: cfg.DurableMaxBytes,
		Logger:              log,
	}
}

// ConsumerSettings are the protocol settings of this configuration's
// consumer.
func (cfg *Config) ConsumerSettings(log *slog.Logger) delivery.ConsumerSettings {
	return delivery.ConsumerSettings{
		ProducerID:      cfg.ProducerID,
		Window:          cfg.Window,
		WindowBytes:     cfg.WindowBytes,
		ResendMin:       cfg.ResendMin,
		ResendMax:       cfg.ResendMax,
		OnlyFlowControl: cfg.OnlyFlowControl,
		MaxMessageSize:  cfg.MaxMessageSize,
		Logger:          log,
	}
}

// queueFile is the durable queue's file for this producer and stream.
func (cfg *Config) queueFile() string {
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
