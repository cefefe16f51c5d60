package nats

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures an embedded NATS server. The zero value of every
// field means its default.
type ServerConfig struct {
	// Host is the address the server listens on. Default "127.0.0.1".
	Host string

	// Port is the client port. Default 0: a free port.
	Port int

	// StoreDir is where JetStream keeps its streams. Default: a new
	// temporary directory, removed by Shutdown. Give a directory of your own
	// for streams that outlive the process.
	StoreDir string

	// Token, when set, is required of every client (nats.go: nats.Token, or
	// the token as a URL's user info): a client without it is refused with
	// an authorization violation. Make it long and random. Default: none,
	// and whoever reaches the port may connect.
	Token string

	// MaxPayload is the largest message the server takes, in bytes.
	// Default: the server's, 1 MiB.
	MaxPayload int

	// ReadyTimeout bounds how long StartServer waits for the server to take
	// connections. Default 10 s.
	ReadyTimeout time.Duration

	// Logger receives the server's log (notices as Info, warnings, errors).
	// Default: none.
	Logger *slog.Logger
}

// Server is an in-process nats-server with JetStream: the bridge's default
// broker when no URL is configured. It runs until Shutdown. (Tests that
// restart a broker under a stream use adaptertest.StartNATS.)
type Server struct {
	cfg      ServerConfig
	tempDir  bool // StoreDir was made by StartServer
	srv      *server.Server
	shutdown sync.Once
}

// StartServer starts an embedded server and returns once it takes
// connections, or an error when it cannot (the port is taken, JetStream
// cannot use the store).
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, &ConfigError{Field: "ServerConfig.Port", Value: cfg.Port, Reason: "0 (any free port) to 65535"}
	}
	if cfg.MaxPayload < 0 || cfg.MaxPayload > 64<<20 {
		return nil, &ConfigError{Field: "ServerConfig.MaxPayload", Value: cfg.MaxPayload, Reason: "0 (the server's default) to 64 MiB"}
	}
	var err error
	if cfg.ReadyTimeout, err = positiveDuration("ServerConfig.ReadyTimeout", cfg.ReadyTimeout, 10*time.Second); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	if s.cfg.StoreDir == "" {
		if s.cfg.StoreDir, err = os.MkdirTemp("", "bridge-nats-*"); err != nil {
			return nil, fmt.Errorf("nats: embedded server store: %w", err)
		}
		s.tempDir = true
	}
	if err := s.start(ctx); err != nil {
		if s.tempDir {
			os.RemoveAll(s.cfg.StoreDir)
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	opts := &server.Options{
		Host:       s.cfg.Host,
		Port:       s.cfg.Port,
		JetStream:  true,
		StoreDir:   s.cfg.StoreDir,
		MaxPayload: int32(s.cfg.MaxPayload),
		NoSigs:     true,
		NoLog:      s.cfg.Logger == nil,
		// The server's own clients (JetStream's, the system account's) are
		// internal and need no token.
		Authorization: s.cfg.Token,
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats: embedded server: %w", err)
	}
	if s.cfg.Logger != nil {
		srv.SetLoggerV2(serverLog{s.cfg.Logger}, false, false, false)
	}
	srv.Start()
	timeout := s.cfg.ReadyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("nats: embedded server on %s:%d not ready after %v", s.cfg.Host, s.cfg.Port, timeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("nats: embedded server: %w (store %s)", ErrJetStreamUnavailable, s.cfg.StoreDir)
	}
	s.cfg.Port = srv.Addr().(*net.TCPAddr).Port // the one picked, for a Port of 0
	s.srv = srv
	return nil
}

// URL is the client URL of the server, for Config.URL. It holds no token:
// give a client ServerConfig.Token in its options.
func (s *Server) URL() string {
	return fmt.Sprintf("nats://%s", net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.Port)))
}

// Port is the server's client port.
func (s *Server) Port() int { return s.cfg.Port }

// StoreDir is where the server keeps its JetStream streams.
func (s *Server) StoreDir() string { return s.cfg.StoreDir }

// Shutdown stops the server and removes its store if StartServer made it.
// Idempotent.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		if s.tempDir {
			os.RemoveAll(s.cfg.StoreDir)
		}
	})
}

// serverLog passes the server's log to slog.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
