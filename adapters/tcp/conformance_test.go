package tcp_test

import (
	"context"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// testConfig detects a cut within a second and reconnects at once.
var testConfig = tcp.Config{
	Secret:           "conformance-secret-0123456789",
	Keepalive:        100 * time.Millisecond,
	IdleTimeout:      time.Second,
	HandshakeTimeout: time.Second,
	ReconnectMin:     10 * time.Millisecond,
	ReconnectMax:     200 * time.Millisecond,
}

// newCarrier makes a carrier whose listenEnd ends listen on a free
// loopback port, closed at cleanup. Both ends of a stream are opened on it:
// the other end dials its listener.
func newCarrier(t *testing.T, listenEnd delivery.End) *tcp.Carrier {
	t.Helper()
	c, err := tcp.New("127.0.0.1:0", listenEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	for _, listenEnd := range []delivery.End{delivery.ConsumerEnd, delivery.ProducerEnd} {
		name := listenEnd.String() + " listens"
		t.Run(name, func(t *testing.T) {
			c := newCarrier(t, listenEnd)
			adaptertest.Run(t, adaptertest.Spec{
				Name:    "tcp (" + name + ")",
				Carrier: c,
				Cut:     func(_ testing.TB, stream string) { c.CutStream(stream) },
				// A stranger without the secret cannot dial in (see
				// TestWrongSecretRefused): it injects into the connection.
				Inject: func(t testing.TB, stream string, to delivery.End, frame []byte) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := c.Inject(ctx, stream, to, frame); err != nil {
						t.Errorf("inject into stream %q: %v", stream, err)
					}
				},
				MaxFrameSize:  tcp.DefaultMaxFrameSize,
				NoWorkPulling: noWorkPulling(listenEnd),
			})
		})
	}
}

// noWorkPulling: on tcp the work-pulling producer listens and its workers
// dial it; workers that listen would each need an address of their own.
func noWorkPulling(listenEnd delivery.End) string {
	if listenEnd == delivery.ConsumerEnd {
		return "workers would listen: on tcp the work-pulling producer listens and its workers dial it"
	}
	return ""
}
