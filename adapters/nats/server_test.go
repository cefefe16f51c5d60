package nats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// TestServerToken: an embedded server with a Token refuses a client
// without it, or with another, as an authorization violation; a carrier
// given the token in its client options carries a stream through it
// (JetStream too: the server's own clients need no token).
func TestServerToken(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	srv := startServer(t, nats.ServerConfig{Token: token})

	for name, opts := range map[string][]natsgo.Option{
		"no token":      nil,
		"another token": {natsgo.Token("fedcba9876543210fedcba9876543210")},
	} {
		nc, err := natsgo.Connect(srv.URL(), opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if !errors.Is(err, natsgo.ErrAuthorization) {
			t.Errorf("%s: %v; want an authorization violation", name, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(srv.URL(), nats.ModeJetStream)
	cfg.ClientOptions = append(cfg.ClientOptions, natsgo.Token(token))
	c, err := nats.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := runID + "-token"
	defer c.DeleteStream(context.Background(), stream)
	in, err := c.OpenLink(ctx, stream, delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.OpenLink(ctx, stream, delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Send(ctx, []byte("through the token")); err != nil {
		t.Fatal(err)
	}
	f, err := in.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Data) != "through the token" {
		t.Fatalf("received %q", f.Data)
	}
}
