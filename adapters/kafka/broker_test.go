package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

// testBroker is an in-process Kafka (kfake) of one broker on a fixed port,
// so that it can be stopped and a new one started at the same address: for
// what the test Kafka cannot do (come back having lost its log, serve TLS
// and SASL) and for a plain `go test` with no Kafka running.
type testBroker struct {
	t    testing.TB
	port int
	opts []kfake.Opt

	mu      sync.Mutex
	cluster *kfake.Cluster
}

// startBroker starts a kfake broker for the test and stops it at cleanup.
func startBroker(t testing.TB, opts ...kfake.Opt) *testBroker {
	t.Helper()
	b := &testBroker{t: t, port: freePort(t), opts: opts}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (b *testBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// start starts a broker at the fixed address; the previous one's port may
// take a moment to be free.
func (b *testBroker) start() {
	b.t.Helper()
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(b.port)}, b.opts...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := kfake.NewCluster(opts...)
		if err == nil {
			b.mu.Lock()
			b.cluster = c
			b.mu.Unlock()
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			b.t.Fatalf("start kfake on port %d: %v", b.port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the port to be free: no event to wait for
	}
}

// stop stops the broker: its connections break, and unless it has a DataDir
// its topics, records and offsets are gone.
func (b *testBroker) stop() {
	b.mu.Lock()
	c := b.cluster
	b.cluster = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// restartable is a broker that a test stops and starts again at the same
// address, its data kept: the test Kafka, through its control command
// (.ci/kafka), where the tests are to restart it (adaptertest.KafkaToRestart,
// which makes the test its only user meanwhile: it must not be parallel);
// else, in a plain `go test`, kfake with a data directory.
type restartable struct {
	brokers     []string
	name        string
	stop, start func()
}

func restartableBroker(t *testing.T) restartable {
	t.Helper()
	if k := adaptertest.KafkaToRestart(t); k != nil {
		return restartable{
			brokers: k.Brokers, name: "Apache Kafka at " + strings.Join(k.Brokers, ","),
			stop: func() { k.Stop(t) }, start: func() { k.Start(t) },
		}
	}
	b := startBroker(t, kfakeDataDir(t))
	return restartable{brokers: []string{b.addr()}, name: "kfake", stop: b.stop, start: b.start}
}

// newCarrier connects a carrier to brokers for the test and closes it at
// cleanup.
func newCarrier(t testing.TB, cfg kafka.Config) *kafka.Carrier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := kafka.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testLogger logs through t at Info level (Debug with BRIDGE_TEST_KAFKA_DEBUG=1)
// until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelInfo
	if os.Getenv("BRIDGE_TEST_KAFKA_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// kfakeDataDir makes a broker keep its data in a directory, so that a new
// broker started at the same address finds it.
func kfakeDataDir(t testing.TB) kfake.Opt { return kfake.DataDir(t.TempDir()) }
