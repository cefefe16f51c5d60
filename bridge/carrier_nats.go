package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"

	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// openNATS connects to BRIDGE_NATS_URL or, with none, to an embedded
// server: this process starts one at BRIDGE_NATS_EMBEDDED_ADDR, unless
// another process already has (then it uses that one), so a producer and a
// consumer started on one machine find each other with nothing installed.
// With both ends in this process (the demo, the bench) the embedded server
// takes any free port.
func openNATS(ctx context.Context, cfg *Config, log *slog.Logger, ends []delivery.End) (*carrier, error) {
	ncfg := natscarrier.Config{
		URL:           cfg.NATSURL,
		Name:          "bridge " + cfg.Stream,
		SubjectPrefix: cfg.NATSPrefix,
		Mode:          natscarrier.ModeCore,
		Logger:        log,
	}
	if cfg.NATSJetStream {
		ncfg.Mode = natscarrier.ModeJetStream
		ncfg.JetStream.StreamPrefix = cfg.NATSPrefix
	}
	if cfg.NATSUser != "" {
		ncfg.ClientOptions = append(ncfg.ClientOptions, natsgo.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	}
	if cfg.NATSToken != "" {
		ncfg.ClientOptions = append(ncfg.ClientOptions, natsgo.Token(cfg.NATSToken))
	}
	tlsCfg, err := tlsConfig(cfg, false)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		ncfg.ClientOptions = append(ncfg.ClientOptions, natsgo.Secure(tlsCfg))
	}

	var server *natscarrier.Server
	if cfg.NATSURL == "" {
		addr := cfg.NATSEmbeddedAddr
		if len(ends) == 2 {
			addr = "127.0.0.1:0"
		}
		if server, err = embeddedNATS(ctx, addr, cfg.NATSEmbeddedDir, log); err != nil {
			return nil, err
		}
		if server != nil {
			ncfg.URL = server.URL()
		} else {
			ncfg.URL = "nats://" + addr
			log.Info("using the embedded NATS server another bridge process runs", "url", ncfg.URL)
		}
	}
	c, err := natscarrier.New(ctx, ncfg)
	if err != nil {
		if server != nil {
			server.Shutdown()
		}
		if cfg.NATSURL != "" {
			return nil, fmt.Errorf("BRIDGE_NATS_URL: %w", err)
		}
		return nil, err
	}
	return &carrier{
		name: "nats " + string(ncfg.Mode),
		open: func(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
			return c.Link(ctx, stream, end)
		},
		close: func() error {
			err := c.Close()
			if server != nil {
				server.Shutdown()
			}
			return err
		},
	}, nil
}

// embeddedNATS starts a server at addr, or returns nil if the address is
// taken (another bridge process serves there). Two processes started at
// once may both find it free: the one that loses the race to bind finds
// the other's server answering, and uses it.
func embeddedNATS(ctx context.Context, addr, dir string, log *slog.Logger) (*natscarrier.Server, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &ConfigError{Var: "BRIDGE_NATS_EMBEDDED_ADDR", Value: addr, Reason: "must be host:port"}
	}
	port, _ := strconv.Atoi(portText)
	if port != 0 && serving(addr) {
		return nil, nil
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := natscarrier.StartServer(startCtx, natscarrier.ServerConfig{Host: host, Port: port, StoreDir: dir, Logger: log})
	if err != nil {
		if port != 0 && serving(addr) {
			return nil, nil
		}
		return nil, fmt.Errorf("starting the embedded NATS server at %s (BRIDGE_NATS_EMBEDDED_ADDR): %w", addr, err)
	}
	log.Info("started an embedded NATS server (set BRIDGE_NATS_URL to use your own)", "url", s.URL(), "store", s.StoreDir())
	return s, nil
}

// serving reports whether something accepts connections at addr.
func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
