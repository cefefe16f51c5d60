package bridge

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// carrier is this process's hold on the transport the configuration names:
// it opens the links of the stream's ends and closes what it opened.
type carrier struct {
	name  string
	open  func(ctx context.Context, stream string, end delivery.End) (delivery.Link, error)
	close func() error
	// deleteStream removes what a stream keeps on the broker (queues,
	// topics, a JetStream stream) once its links are closed; nil when
	// nothing outlives them.
	deleteStream func(ctx context.Context, stream string) error
}

// openCarrier connects to the configured transport. ends are the ends this
// process will open: one for `bridge run`, both for the demo and the bench.
func openCarrier(ctx context.Context, cfg *Config, log *slog.Logger, ends ...delivery.End) (*carrier, error) {
	log = log.With("transport", cfg.Transport) // the carriers name the stream themselves
	switch cfg.Transport {
	case "tcp":
		return openTCP(ctx, cfg, log, ends)
	case "nats":
		return openNATS(ctx, cfg, log, ends)
	case "amqp":
		return openAMQP(ctx, cfg, log)
	case "kafka":
		return openKafka(ctx, cfg, log)
	}
	return nil, &ConfigError{Var: "BRIDGE_TRANSPORT", Value: cfg.Transport, Reason: "must be one of tcp, nats, amqp, kafka"}
}

// openTCP listens for the end named by BRIDGE_TCP_LISTEN and dials for the
// other. With both ends in one process the listener takes an ephemeral
// port when TCP_ADDR's is 0.
func openTCP(ctx context.Context, cfg *Config, log *slog.Logger, ends []delivery.End) (*carrier, error) {
	listenEnd := delivery.ConsumerEnd
	if cfg.TCPListen == "producer" {
		listenEnd = delivery.ProducerEnd
	}
	base := tcp.Config{Secret: cfg.TCPSecret, MaxFrameSize: max(tcp.DefaultMaxFrameSize, cfg.ChunkSize+64<<10), Logger: log}
	var ln *tcp.Listener
	addr := cfg.TCPAddr
	for _, end := range ends {
		if end != listenEnd {
			continue
		}
		server := base
		var err error
		if server.TLS, err = tlsConfig(cfg, true); err != nil {
			return nil, err
		}
		if ln, err = tcp.Listen(ctx, addr, server); err != nil {
			return nil, fmt.Errorf("BRIDGE_TCP_ADDR=%s: %w", addr, err)
		}
		addr = ln.Addr().String()
		log.Info("listening", "addr", addr, "end", end.String(), "tls", describeTLS(server.TLS))
	}
	client := base
	var err error
	if client.TLS, err = tlsConfig(cfg, false); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	var links []*tcp.Link
	return &carrier{
		name: "tcp",
		open: func(_ context.Context, stream string, end delivery.End) (delivery.Link, error) {
			if end == listenEnd {
				return ln.Link(stream, end)
			}
			l, err := tcp.Dial(addr, stream, end, client)
			if err == nil {
				links = append(links, l)
				log.Info("dialing", "addr", addr, "end", end.String(), "tls", describeTLS(client.TLS))
			}
			return l, err
		},
		close: func() error {
			for _, l := range links {
				l.Close()
			}
			if ln != nil {
				return ln.Close()
			}
			return nil
		},
	}, nil
}
