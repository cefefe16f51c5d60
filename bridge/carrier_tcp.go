package bridge

import (
	"context"
	"log/slog"
	"net"

	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// TCPConfig is the tcp carrier's configuration from BRIDGE_TCP_*,
// BRIDGE_TLS_* and BRIDGE_SECRET: the address, which end listens there, and
// the Config of both sides (one TLS configuration serves a listener and a
// dialer). The handshake's secret is derived from BRIDGE_SECRET (its
// purpose "tcp handshake"), so it says nothing of the keys that seal the
// frames, nor they of it.
func (cfg *Config) TCPConfig(log *slog.Logger) (addr string, listenEnd delivery.End, c tcp.Config, err error) {
	listenEnd = delivery.ConsumerEnd
	if cfg.TCPListen == "producer" {
		listenEnd = delivery.ProducerEnd
	}
	c = tcp.Config{
		// A frame holds at least one chunk.
		MaxFrameSize: max(tcp.DefaultMaxFrameSize, cfg.ChunkSize+64<<10),
		Logger:       log,
	}
	if c.Secret, err = cfg.derivedSecret("tcp handshake", 32); err != nil {
		return "", 0, tcp.Config{}, err
	}
	if c.TLS, err = cfg.tlsConfig(); err != nil {
		return "", 0, tcp.Config{}, err
	}
	return cfg.TCPAddr, listenEnd, c, nil
}

// openTCP makes the tcp carrier: it listens for the end BRIDGE_TCP_LISTEN
// names once that end opens, and dials for the other.
func openTCP(_ context.Context, cfg *Config, log *slog.Logger) (delivery.Carrier, func(), error) {
	addr, listenEnd, c, err := cfg.TCPConfig(log)
	if err != nil {
		return nil, nil, err
	}
	car, err := tcp.New(addr, listenEnd, c)
	if err != nil {
		return nil, nil, err
	}
	return car, nil, nil
}

func (cfg *Config) checkTCP(c *checker) {
	if _, _, err := net.SplitHostPort(cfg.TCPAddr); err != nil {
		c.fail("TCP_ADDR", cfg.TCPAddr, "must be host:port")
	}
	c.oneOf("TCP_LISTEN", cfg.TCPListen, "consumer", "producer")
}
