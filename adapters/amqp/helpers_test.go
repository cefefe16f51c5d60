package amqp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
)

// The tests run against the broker at BRIDGE_TEST_AMQP_URL (default the
// local RabbitMQ). Without one they skip, unless
// BRIDGE_TEST_REQUIRE_BROKERS=1, which makes them fail. Faults are injected
// from the broker's side with rabbitmqctl (BRIDGE_TEST_RABBITMQCTL, default
// "rabbitmqctl"; for a broker in a container, e.g.
// "docker exec rabbitmq rabbitmqctl").

const defaultBrokerURL = "amqp://guest:guest@127.0.0.1:5672/"

func brokerURL() string {
	if u := os.Getenv("BRIDGE_TEST_AMQP_URL"); u != "" {
		return u
	}
	return defaultBrokerURL
}

var (
	probeOnce sync.Once
	probeErr  error
)

// requireBroker skips the test (fails it, when brokers are required) if
// the broker does not answer, and returns its URL.
func requireBroker(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var c *amqp.Carrier
		c, probeErr = amqp.New(ctx, amqp.Config{URL: brokerURL(), Name: "bridge-test-probe"})
		if probeErr == nil {
			c.Close()
		}
	})
	if probeErr != nil {
		adaptertest.BrokerUnavailable(t, "RabbitMQ at BRIDGE_TEST_AMQP_URL (default %s) unreachable: %v", defaultBrokerURL, probeErr)
	}
	return brokerURL()
}

// rabbitmqctl returns the command that controls the broker, or skips the
// test (fails it, when brokers are required) if there is none.
func rabbitmqctl(t testing.TB) []string {
	t.Helper()
	cmd := strings.Fields(os.Getenv("BRIDGE_TEST_RABBITMQCTL"))
	if len(cmd) == 0 {
		cmd = []string{"rabbitmqctl"}
	}
	if _, err := exec.LookPath(cmd[0]); err != nil {
		adaptertest.BrokerUnavailable(t, "no rabbitmqctl to cut connections from the broker's side (set BRIDGE_TEST_RABBITMQCTL): %v", err)
	}
	return cmd
}

// runID keeps the names of one test run apart from other runs on the same
// broker, which keeps its queues.
var runID = fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)

// testName makes a connection or stream name unique to this run.
func testName(kind string) string {
	return fmt.Sprintf("bridge-test-%s-%s-%d", runID, kind, nameSeq.Add(1))
}

var nameSeq atomic.Int64

// testLogger writes the carrier's warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newCarrier connects a carrier for one test, named uniquely, and closes it
// at cleanup, then deletes the queues of streams.
func newCarrier(t testing.TB, cfg amqp.Config, streams ...string) *amqp.Carrier {
	t.Helper()
	if url := requireBroker(t); cfg.URL == "" {
		cfg.URL = url
	}
	if cfg.Name == "" {
		cfg.Name = testName("carrier")
	}
	if cfg.QueuePrefix == "" {
		cfg.QueuePrefix = "bridge-test."
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	deleteQueuesAtCleanup(t, cfg.QueuePrefix, streams...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := amqp.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deleteQueuesAtCleanup deletes the data and control queues of streams
// when the test ends (after the carriers it registered later are closed).
func deleteQueuesAtCleanup(t testing.TB, prefix string, streams ...string) {
	t.Helper()
	var names []string
	for _, s := range streams {
		names = append(names, prefix+s+".data", prefix+s+".control")
	}
	t.Cleanup(func() { deleteQueues(t, names...) })
}

// deleteQueues deletes queues on a connection of its own.
func deleteQueues(t testing.TB, names ...string) {
	t.Helper()
	if len(names) == 0 {
		return
	}
	withAdminChannel(t, func(ch *amqp091.Channel) {
		for _, q := range names {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("delete queue %s: %v", q, err)
				return
			}
		}
	})
}

// withAdminChannel runs f on a channel of a connection of its own, outside
// any carrier: what an operator would do.
func withAdminChannel(t testing.TB, f func(ch *amqp091.Channel)) {
	t.Helper()
	conn, err := amqp091.DialConfig(brokerURL(), amqp091.Config{Properties: amqp091.Table{"connection_name": "bridge-test-admin"}})
	if err != nil {
		t.Errorf("admin connection: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("admin channel: %v", err)
		return
	}
	defer ch.Close()
	f(ch)
}

// cutConnections closes, from the broker's side, every connection whose
// client-given name starts with name and a space (a carrier's "<Name>
// publish" and "<Name> consume"), and returns how many it closed.
func cutConnections(t testing.TB, ctl []string, name string) int {
	t.Helper()
	list := append(append([]string{}, ctl[1:]...), "list_connections", "-q", "--no-table-headers", "pid", "client_properties")
	out, err := exec.Command(ctl[0], list...).CombinedOutput()
	if err != nil {
		t.Errorf("rabbitmqctl list_connections: %v: %s", err, out) // not Fatal: faults run off the test's goroutine
		return 0
	}
	want := `{"connection_name","` + name + ` `
	var pids []string
	for line := range strings.Lines(string(out)) {
		pid, props, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && strings.Contains(props, want) {
			pids = append(pids, pid)
		}
	}
	var wg sync.WaitGroup
	for _, pid := range pids {
		wg.Go(func() {
			args := append(append([]string{}, ctl[1:]...), "close_connection", pid, "cut by test")
			if out, err := exec.Command(ctl[0], args...).CombinedOutput(); err != nil {
				t.Logf("rabbitmqctl close_connection %s: %v: %s", pid, err, out)
			}
		})
	}
	wg.Wait()
	return len(pids)
}
