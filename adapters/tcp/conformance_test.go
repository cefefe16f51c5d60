package tcp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// testConfig detects a cut within a second and reconnects at once.
var testConfig = tcp.Config{
	Secret:           "conformance",
	Keepalive:        100 * time.Millisecond,
	IdleTimeout:      time.Second,
	HandshakeTimeout: time.Second,
	ReconnectMin:     10 * time.Millisecond,
	ReconnectMax:     200 * time.Millisecond,
}

// carrier serves every stream's listening end from one listener. With
// consumerListens, consumer ends listen and producer ends dial; otherwise
// the reverse.
type carrier struct {
	ln              *tcp.Listener
	consumerListens bool
	mu              sync.Mutex
	links           map[string][]*tcp.Link
}

func newCarrier(t *testing.T, consumerListens bool) *carrier {
	ln, err := tcp.Listen(context.Background(), "127.0.0.1:0", testConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &carrier{ln: ln, consumerListens: consumerListens, links: map[string][]*tcp.Link{}}
}

func (c *carrier) open(t testing.TB, stream string, end delivery.End) delivery.Link {
	var l *tcp.Link
	var err error
	if (end == delivery.ConsumerEnd) == c.consumerListens {
		l, err = c.ln.Link(stream, end)
	} else {
		l, err = tcp.Dial(c.ln.Addr().String(), stream, end, testConfig)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.links[stream] = append(c.links[stream], l)
	c.mu.Unlock()
	return l
}

func (c *carrier) cut(t testing.TB, stream string) {
	c.mu.Lock()
	links := c.links[stream]
	c.mu.Unlock()
	for _, l := range links {
		l.Cut()
	}
}

func TestConformance(t *testing.T) {
	for _, consumerListens := range []bool{true, false} {
		name := "consumer listens"
		if !consumerListens {
			name = "producer listens"
		}
		t.Run(name, func(t *testing.T) {
			c := newCarrier(t, consumerListens)
			adaptertest.Run(t, adaptertest.Carrier{
				Name:         "tcp (" + name + ")",
				Open:         c.open,
				Cut:          c.cut,
				MaxFrameSize: tcp.DefaultMaxFrameSize,
			})
		})
	}
}
