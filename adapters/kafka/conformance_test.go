package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// linkRegistry remembers the links opened per stream, for Cut.
type linkRegistry struct {
	mu    sync.Mutex
	links map[string][]*kafka.Link
}

func (r *linkRegistry) add(stream string, l *kafka.Link) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.links == nil {
		r.links = map[string][]*kafka.Link{}
	}
	r.links[stream] = append(r.links[stream], l)
}

func (r *linkRegistry) get(stream string) []*kafka.Link {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*kafka.Link(nil), r.links[stream]...)
}

func (r *linkRegistry) streams() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for stream := range r.links {
		s = append(s, stream)
	}
	return s
}

// conformanceCarrier describes c to the conformance suite. Cut closes the
// network connections of every link of the stream, as a network failure
// would.
func conformanceCarrier(name string, c *kafka.Carrier, reg *linkRegistry) adaptertest.Carrier {
	return adaptertest.Carrier{
		Name: name,
		Open: func(t testing.TB, stream string, end delivery.End) delivery.Link {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, err := c.Link(ctx, stream, end)
			if err != nil {
				t.Fatalf("open the %v end of %s: %v", end, stream, err)
			}
			reg.add(stream, l)
			return l
		},
		Cut: func(t testing.TB, stream string) {
			for _, l := range reg.get(stream) {
				kafka.CutConnections(l)
			}
		},
		Queue:        true,
		Release:      true,
		MaxFrameSize: kafka.DefaultMaxMessageBytes - kafka.RecordOverhead,
	}
}

func TestConformance(t *testing.T) {
	broker := startBroker(t)
	c := newCarrier(t, kafka.Config{Brokers: []string{broker.addr()}})
	adaptertest.Run(t, conformanceCarrier("kafka on kfake", c, &linkRegistry{}))
}
