package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"

	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// NATSConfig is the nats carrier's configuration from BRIDGE_NATS_* and
// BRIDGE_TLS_*, credentials and TLS in its ClientOptions. With no
// BRIDGE_NATS_URL its URL is empty: openNATS fills in the embedded
// server's.
func (cfg *Config) NATSConfig(log *slog.Logger) (natscarrier.Config, error) {
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
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return natscarrier.Config{}, err
	}
	if tlsCfg != nil {
		ncfg.ClientOptions = append(ncfg.ClientOptions, natsgo.Secure(tlsCfg))
	}
	return ncfg, nil
}

// openNATS connects to BRIDGE_NATS_URL or, with none, to an embedded
// server: this process starts one at BRIDGE_NATS_EMBEDDED_ADDR, unless
// another process already has (then it uses that one), so a producer and a
// consumer started on one machine find each other with nothing installed.
// The embedded server takes only clients with its token, which both
// processes know (see embeddedNATSToken). It stops once the carrier is
// closed.
func openNATS(ctx context.Context, cfg *Config, log *slog.Logger) (delivery.Carrier, func(), error) {
	ncfg, err := cfg.NATSConfig(log)
	if err != nil {
		return nil, nil, err
	}
	var stopServer func()
	var tokenFile string
	if cfg.NATSURL == "" {
		var server *natscarrier.Server
		addr := cfg.NATSEmbeddedAddr
		var token string
		if token, tokenFile, err = cfg.embeddedNATSToken(embeddedPort(addr)); err != nil {
			return nil, nil, err
		}
		if server, stopServer, err = embeddedNATS(ctx, addr, cfg.NATSEmbeddedDir, token, log); err != nil {
			return nil, nil, err
		}
		if server != nil {
			ncfg.URL = server.URL()
		} else {
			ncfg.URL = "nats://" + addr
			log.Info("using the embedded NATS server another bridge process runs", "url", ncfg.URL)
		}
		ncfg.ClientOptions = append(ncfg.ClientOptions, natsgo.Token(token))
	}
	c, err := natscarrier.New(ctx, ncfg)
	if err != nil {
		if stopServer != nil {
			stopServer()
		}
		switch {
		case cfg.NATSURL != "":
			return nil, nil, fmt.Errorf("BRIDGE_NATS_URL: %w", err)
		case errors.Is(err, natsgo.ErrAuthorization) && cfg.Sealed():
			return nil, nil, fmt.Errorf("the embedded NATS server at %s refused this bridge's token, derived from BRIDGE_SECRET: the bridge that started it has another; check BRIDGE_SECRET: %w", cfg.NATSEmbeddedAddr, err)
		case errors.Is(err, natsgo.ErrAuthorization):
			return nil, nil, fmt.Errorf("the embedded NATS server at %s refused this bridge's token (from %s): the bridge that started it has another (another user's, another BRIDGE_NATS_EMBEDDED_DIR, or BRIDGE_SECRET); give both ends the same BRIDGE_SECRET: %w", cfg.NATSEmbeddedAddr, tokenFile, err)
		}
		return nil, nil, err
	}
	return c, stopServer, nil
}

// embeddedPort is the port of BRIDGE_NATS_EMBEDDED_ADDR (checked).
func embeddedPort(addr string) int {
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

func (cfg *Config) checkNATS(c *checker) {
	if cfg.NATSURL == "" {
		if _, _, err := net.SplitHostPort(cfg.NATSEmbeddedAddr); err != nil {
			c.fail("NATS_EMBEDDED_ADDR", cfg.NATSEmbeddedAddr, "must be host:port")
		}
	}
	if !validName(cfg.NATSPrefix) {
		c.fail("NATS_PREFIX", cfg.NATSPrefix, "letters, digits, '-' or '_'")
	}
	if cfg.NATSURL != "" {
		return
	}
	// The embedded server: its own credentials, and no TLS.
	for _, v := range []struct{ name, value string }{{"NATS_USER", cfg.NATSUser}, {"NATS_PASSWORD", cfg.NATSPassword}, {"NATS_TOKEN", cfg.NATSToken}} {
		if v.value != "" {
			c.fail(v.name, "", "only with BRIDGE_NATS_URL: the embedded server's credentials are the bridges' own (from BRIDGE_SECRET, or a token file)")
		}
	}
	if cfg.tlsOn() {
		c.fail("NATS_URL", "", "required with BRIDGE_TLS* settings: the embedded NATS server serves no TLS")
	}
}

// embeddedNATS starts a server at addr that requires token of its clients
// (see embeddedNATSToken), or returns nil if another bridge process serves
// there (then this one uses that server). Two processes started at once may
// both find the address free: with a store directory, the one that locks it
// first starts the server and the other waits for it to answer (two servers
// must never share a JetStream store); without one, the loser of the race
// to bind finds the winner's server answering. The returned stop shuts the
// server down and lets go of the directory.
func embeddedNATS(ctx context.Context, addr, dir, token string, log *slog.Logger) (s *natscarrier.Server, stop func(), err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, &ConfigError{Var: "BRIDGE_NATS_EMBEDDED_ADDR", Value: addr, Reason: "must be host:port"}
	}
	port, _ := strconv.Atoi(portText)
	if port != 0 && serving(addr) {
		return nil, nil, nil
	}
	unlock := func() {}
	if dir != "" {
		var held bool
		if unlock, held, err = lockStore(dir); err != nil {
			return nil, nil, err
		}
		if !held {
			log.Info("another bridge process starts the embedded NATS server on this store; waiting for it", "dir", dir, "addr", addr)
			if err := awaitServing(ctx, addr, 30*time.Second); err != nil {
				return nil, nil, fmt.Errorf("BRIDGE_NATS_EMBEDDED_DIR=%s is locked by another process, and no server answers at %s: %w", dir, addr, err)
			}
			return nil, nil, nil
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err = natscarrier.StartServer(startCtx, natscarrier.ServerConfig{Host: host, Port: port, StoreDir: dir, Token: token, Logger: log})
	if err != nil {
		unlock()
		if port != 0 && serving(addr) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("starting the embedded NATS server at %s (BRIDGE_NATS_EMBEDDED_ADDR): %w", addr, err)
	}
	log.Info("started an embedded NATS server (set BRIDGE_NATS_URL to use your own)", "url", s.URL(), "store", s.StoreDir())
	return s, func() { s.Shutdown(); unlock() }, nil
}

// awaitServing waits until something accepts connections at addr.
func awaitServing(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for !serving(addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing answered in %v", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // a server's start has no event to wait on from another process
		}
	}
	return nil
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
