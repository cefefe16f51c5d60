package nats_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// machineNATS returns the URL of the machine's NATS server from
// BRIDGE_TEST_NATS_URL. It skips the test when the variable is unset or the
// server unreachable, unless BRIDGE_TEST_REQUIRE_BROKERS=1, which makes
// either a failure.
func machineNATS(t testing.TB) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		adaptertest.BrokerUnavailable(t, format, args...)
	}
	raw := os.Getenv("BRIDGE_TEST_NATS_URL")
	if raw == "" {
		unavailable("BRIDGE_TEST_NATS_URL is not set; set it to the machine's NATS with JetStream, e.g. nats://127.0.0.1:4222")
		return ""
	}
	first := strings.TrimSpace(strings.Split(raw, ",")[0])
	u, err := url.Parse(first)
	if err != nil || u.Host == "" {
		t.Fatalf("BRIDGE_TEST_NATS_URL=%q is not a nats://host:port URL", raw)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		unavailable("NATS at BRIDGE_TEST_NATS_URL=%s is unreachable: %v", raw, err)
		return ""
	}
	conn.Close()
	return raw
}

// startServer starts an embedded server with its store in a temporary
// directory, shut down when the test ends. Tests that restart the server
// use adaptertest.StartNATS instead.
func startServer(t testing.TB, cfg nats.ServerConfig) *nats.Server {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	s, err := nats.StartServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// runID tells this run's names from other runs' on a shared server.
var runID = fmt.Sprintf("t%d", time.Now().UnixNano()%1e9)

// testConfig is a carrier configuration for tests: quick reconnects, names
// of this run only.
func testConfig(url string, mode nats.Mode) nats.Config {
	return nats.Config{
		URL:           url,
		Mode:          mode,
		SubjectPrefix: "bridgetest." + runID,
		ReconnectWait: 20 * time.Millisecond,
		JetStream:     nats.JetStreamConfig{StreamPrefix: "bridgetest_" + runID},
	}
}

func newCarrier(t testing.TB, cfg nats.Config) *nats.Carrier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nats.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openLink opens an end of stream and, in JetStream mode, deletes the
// stream's JetStream stream when the test ends.
func openLink(t testing.TB, c *nats.Carrier, stream string, end delivery.End) *nats.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	deleteWhenDone(t, c, stream)
	l, err := c.Link(ctx, stream, end)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// deleteWhenDone deletes stream's JetStream stream, if any, when the test
// ends, after the links the test opened later are closed.
func deleteWhenDone(t testing.TB, c *nats.Carrier, stream string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.DeleteStream(ctx, stream); err != nil && !strings.Contains(err.Error(), "carrier closed") {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// conformanceSpec describes c, on the server at url with the subjects of
// testConfig, to the conformance suite, which opens its links through c.
// In JetStream mode the streams it leaves are deleted when the test ends. A
// stranger publishes on a connection of its own to the stream's subjects
// (in JetStream mode the stream takes what is published to its subject,
// from anyone).
func conformanceSpec(t *testing.T, name string, c *nats.Carrier, url string) adaptertest.Spec {
	jetStream := c.Mode() == nats.ModeJetStream
	stranger, err := natsgo.Connect(url, natsgo.Name("conformance stranger"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stranger.Close)
	return adaptertest.Spec{
		Name:    name,
		Carrier: adaptertest.DeleteStreamsAtCleanup(t, c),
		Cut:     func(_ testing.TB, stream string) { c.CutStream(stream) },
		Inject: func(t testing.TB, stream string, to delivery.End, frame []byte) {
			subject := "bridgetest." + runID + "." + stream + ".data"
			if to == delivery.ProducerEnd {
				subject = "bridgetest." + runID + "." + stream + ".control"
			}
			if err := stranger.Publish(subject, frame); err != nil {
				t.Errorf("stranger: publish to %s: %v", subject, err)
			}
		},
		Queue:        jetStream,
		Release:      jetStream,
		MaxFrameSize: c.MaxFrameSize(),
	}
}

// eventually polls cond until it holds or the deadline passes, for
// conditions that no event announces.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
