package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure a test NATS server.
type NATSOptions struct {
	// Port is the client port. 0: a free one, chosen at the first start and
	// kept by Restart and Start.
	Port int

	// StoreDir is where JetStream keeps its streams. Default: a temporary
	// directory of the test's.
	StoreDir string
}

// NATSServer is an in-process nats-server with JetStream on file storage,
// on 127.0.0.1, for tests that take the broker away under a stream: it
// stops and starts again on the same port and store, as a real server's
// restart would look to its clients. The server is stopped when the test
// ends.
type NATSServer struct {
	opts NATSOptions

	life sync.Mutex // one Stop, Start or Restart at a time
	mu   sync.Mutex
	srv  *server.Server // nil while stopped
}

// StartNATS starts a test NATS server and returns once it takes
// connections; it fails the test if it cannot.
func StartNATS(t testing.TB, opts NATSOptions) *NATSServer {
	t.Helper()
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	s := &NATSServer{opts: opts}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *NATSServer) URL() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))
}

// Port is the server's client port.
func (s *NATSServer) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Port
}

// StoreDir is where the server keeps its JetStream streams.
func (s *NATSServer) StoreDir() string { return s.opts.StoreDir }

// Restart stops the server, as a crash of the broker would look to its
// clients, and starts it again on the same port and store: streams and
// durable consumers on file storage come back. ctx bounds the start.
func (s *NATSServer) Restart(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop()
	return s.start(ctx)
}

// Stop shuts the server down and keeps its store, for Start to bring it
// back. Idempotent.
func (s *NATSServer) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop()
}

// Start starts a stopped server again on its port and store, and returns
// once it takes connections. ctx bounds the wait.
func (s *NATSServer) Start(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return errors.New("adaptertest: the NATS server is running")
	}
	return s.start(ctx)
}

func (s *NATSServer) start(ctx context.Context) error {
	port := s.Port()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  s.opts.StoreDir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return fmt.Errorf("adaptertest: NATS server: %w", err)
	}
	srv.Start()
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	if !srv.ReadyForConnections(timeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("adaptertest: NATS server on port %d, store %s: not ready with JetStream after %v", s.Port(), s.opts.StoreDir, timeout)
	}
	s.mu.Lock()
	s.srv = srv
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port // Restart comes back here
	s.mu.Unlock()
	return nil
}

func (s *NATSServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}
