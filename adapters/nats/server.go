package nats

import (
	"context"
	"errors"
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

	// Port is the client port. Default 0: a free port, chosen at the first
	// start and kept by Restart.
	Port int

	// StoreDir is where JetStream keeps its streams. Default: a new
	// temporary directory, removed by Shutdown. Give a directory of your own
	// for streams that outlive the process.
	StoreDir string

	// MaxPayload is the largest message the server takes, in bytes.
	// Default: the server's, 1 MiB.
	MaxPayload int

	// ReadyTimeout bounds how long a start waits for the server to take
	// connections. Default 10 s.
	ReadyTimeout time.Duration

	// Logger receives the server's log (notices as Info, warnings, errors).
	// Default: none.
	Logger *slog.Logger
}

// Server is an in-process nats-server with JetStream: the bridge's default
// broker when no URL is configured, and the tests' broker. It can be
// restarted on the same port and store, as a real server would be.
type Server struct {
	cfg     ServerConfig
	tempDir bool // StoreDir was made by StartServer

	life sync.Mutex // one start, stop or restart at a time
	mu   sync.Mutex
	srv  *server.Server
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
	if s.cfg.Port == 0 {
		s.cfg.Port = srv.Addr().(*net.TCPAddr).Port // Restart comes back here
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return nil
}

// URL is the client URL of the server, for Config.URL.
func (s *Server) URL() string {
	return fmt.Sprintf("nats://%s", net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.Port)))
}

// Port is the server's client port.
func (s *Server) Port() int { return s.cfg.Port }

// StoreDir is where the server keeps its JetStream streams.
func (s *Server) StoreDir() string { return s.cfg.StoreDir }

// Restart shuts the server down, as a crash of the broker would look to its
// clients, and starts it again on the same port and store: streams and
// durable consumers on file storage come back.
func (s *Server) Restart(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop()
	return s.start(ctx)
}

// Stop shuts the server down and keeps its store, so that Start brings it
// back. Clients see the broker go away.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop()
}

// Start starts a stopped server again on the same port and store.
func (s *Server) Start(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return errors.New("nats: embedded server is running")
	}
	return s.start(ctx)
}

func (s *Server) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Shutdown stops the server and removes its store if StartServer made it.
// Idempotent.
func (s *Server) Shutdown() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop()
	if s.tempDir {
		os.RemoveAll(s.cfg.StoreDir)
	}
}

// serverLog passes the server's log to slog.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
