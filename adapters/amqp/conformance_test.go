package amqp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// carriers gives each stream of the suite a carrier of its own, so that a
// cut closes only that stream's connections: the suite runs its tests in
// parallel on the shared broker.
type carriers struct {
	mu       sync.Mutex
	byStream map[string]*amqp.Carrier
	names    map[string]string
}

func (cs *carriers) get(t testing.TB, stream string) (*amqp.Carrier, string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.byStream[stream]; ok {
		return c, cs.names[stream]
	}
	name := testName("conformance")
	// The suite's stream names are unique per run, and the carrier goes
	// with the test that first opened the stream.
	c := newCarrier(t, amqp.Config{Name: name, MaxFrameSize: 1 << 20}, stream)
	cs.byStream[stream], cs.names[stream] = c, name
	return c, name
}

func TestConformance(t *testing.T) {
	requireBroker(t)
	ctl := rabbitmqctl(t)
	cs := &carriers{byStream: map[string]*amqp.Carrier{}, names: map[string]string{}}
	adaptertest.Run(t, adaptertest.Carrier{
		Name: "amqp",
		Open: func(t testing.TB, stream string, end delivery.End) delivery.Link {
			c, _ := cs.get(t, stream)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := c.Link(ctx, stream, end)
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
		Cut: func(t testing.TB, stream string) {
			_, name := cs.get(t, stream)
			if n := cutConnections(t, ctl, name); n == 0 {
				t.Errorf("no connection of %s to cut", name)
			}
		},
		Queue:        true,
		Release:      true,
		MaxFrameSize: 1 << 20,
	})
}
