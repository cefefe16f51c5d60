package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// TestConfigRejected: New names the field and the value it rejects, before
// it connects to anything.
func TestConfigRejected(t *testing.T) {
	js := func(j nats.JetStreamConfig) nats.Config { return nats.Config{Mode: nats.ModeJetStream, JetStream: j} }
	cases := []struct {
		field string
		cfg   nats.Config
	}{
		{"SubjectPrefix", nats.Config{SubjectPrefix: "bridge.*"}},
		{"SubjectPrefix", nats.Config{SubjectPrefix: "bridge..x"}},
		{"SubjectPrefix", nats.Config{SubjectPrefix: "my bridge"}},
		{"Mode", nats.Config{Mode: "kafka"}},
		{"ConnectTimeout", nats.Config{ConnectTimeout: -time.Second}},
		{"ReconnectWait", nats.Config{ReconnectWait: -1}},
		{"MaxReconnects", nats.Config{MaxReconnects: -1}},
		{"ReconnectBufSize", nats.Config{ReconnectBufSize: -2}},
		{"JetStream.StreamPrefix", js(nats.JetStreamConfig{StreamPrefix: "a.b"})},
		{"JetStream.Durable", js(nats.JetStreamConfig{Durable: "x>"})},
		{"JetStream.Storage", js(nats.JetStreamConfig{Storage: jetstream.StorageType(7)})},
		{"JetStream.Replicas", js(nats.JetStreamConfig{Replicas: 6})},
		{"JetStream.MaxAge", js(nats.JetStreamConfig{MaxAge: -time.Hour})},
		{"JetStream.MaxBytes", js(nats.JetStreamConfig{MaxBytes: -1})},
		{"JetStream.DuplicateWindow", js(nats.JetStreamConfig{DuplicateWindow: -1})},
		{"JetStream.AckWait", js(nats.JetStreamConfig{AckWait: -1})},
		{"JetStream.MaxAckPending", js(nats.JetStreamConfig{MaxAckPending: -5})},
		{"JetStream.PublishAckTimeout", js(nats.JetStreamConfig{PublishAckTimeout: -1})},
		{"JetStream.MaxPendingFrames", js(nats.JetStreamConfig{MaxPendingFrames: -1})},
		{"JetStream.MaxPendingBytes", js(nats.JetStreamConfig{MaxPendingBytes: -1})},
		{"JetStream.PullMaxBytes", js(nats.JetStreamConfig{PullMaxBytes: -1})},
	}
	for _, tc := range cases {
		_, err := nats.New(context.Background(), tc.cfg)
		var cerr *nats.ConfigError
		if !errors.As(err, &cerr) || cerr.Field != tc.field {
			t.Errorf("%+v: got %v; want a *ConfigError for %s", tc.cfg, err, tc.field)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("the error does not name the field: %v", err)
		}
	}
}

// TestUnreachableServer: New fails with a *ConnectError naming the URL, with
// its password hidden.
func TestUnreachableServer(t *testing.T) {
	addr := adaptertest.FreeAddr(t) // nothing listens there now
	url := "nats://user:secret@" + addr
	_, err := nats.New(context.Background(), nats.Config{URL: url, ConnectTimeout: time.Second})
	var cerr *nats.ConnectError
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v; want a *ConnectError", err)
	}
	if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "secret") {
		t.Errorf("the error should name %s and hide the password: %v", addr, err)
	}
	t.Log(err)
}

// TestJetStreamUnavailable: ModeJetStream on a server without JetStream is
// an error at New that says so.
func TestJetStreamUnavailable(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	_, err = nats.New(context.Background(), nats.Config{URL: srv.ClientURL(), Mode: nats.ModeJetStream})
	if !errors.Is(err, nats.ErrJetStreamUnavailable) {
		t.Fatalf("got %v; want nats.ErrJetStreamUnavailable", err)
	}
	t.Log(err)
	c := newCarrier(t, nats.Config{URL: srv.ClientURL()}) // core NATS needs no JetStream
	c.Close()
}

// TestStreamNames: a stream name must make a subject token and a JetStream
// stream name.
func TestStreamNames(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	c := newCarrier(t, testConfig(srv.URL(), nats.ModeJetStream))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bad := range []string{"", "a.b", "orders*", "with space", strings.Repeat("x", 129)} {
		_, err := c.Link(ctx, bad, delivery.ProducerEnd)
		var nerr *nats.StreamNameError
		if !errors.As(err, &nerr) {
			t.Errorf("stream %q: got %v; want a *StreamNameError", bad, err)
		}
	}
	if _, err := c.Link(ctx, "orders", delivery.End(9)); err == nil {
		t.Error("an invalid end was accepted")
	}
	for _, good := range []string{"orders", "Orders-2024_eu", strings.Repeat("x", 128)} {
		l := openLink(t, c, good, delivery.ProducerEnd)
		l.Close()
	}
}

// TestPullMaxBytesBelowMaxPayload: a pull smaller than the largest frame
// would stall the consumer end forever; Link refuses it.
func TestPullMaxBytesBelowMaxPayload(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	cfg := testConfig(srv.URL(), nats.ModeJetStream)
	cfg.JetStream.PullMaxBytes = 512 << 10
	c := newCarrier(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deleteWhenDone(t, c, "pull")
	_, err := c.Link(ctx, "pull", delivery.ConsumerEnd)
	var cerr *nats.ConfigError
	if !errors.As(err, &cerr) || cerr.Field != "JetStream.PullMaxBytes" {
		t.Fatalf("got %v; want a *ConfigError for JetStream.PullMaxBytes", err)
	}
}
