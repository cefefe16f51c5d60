package amqp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// carrierPerStream is a delivery.Carrier that gives each stream an
// amqp.Carrier of its own, named uniquely, so that a cut closes only that
// stream's connections: the suite runs its tests in parallel on the shared
// broker.
type carrierPerStream struct {
	cfg amqp.Config // each stream's carrier's, but for Name

	mu       sync.Mutex
	byStream map[string]*amqp.Carrier
	names    map[string]string // each stream's carrier's Name
	closed   bool
}

var _ delivery.Carrier = (*carrierPerStream)(nil)

// carrier returns stream's carrier, connecting it on the stream's first
// use.
func (cs *carrierPerStream) carrier(ctx context.Context, stream string) (*amqp.Carrier, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return nil, amqp.ErrClosed
	}
	if c, ok := cs.byStream[stream]; ok {
		return c, nil
	}
	cfg := cs.cfg
	cfg.Name = testName("conformance")
	c, err := amqp.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cs.byStream[stream], cs.names[stream] = c, cfg.Name
	return c, nil
}

func (cs *carrierPerStream) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	c, err := cs.carrier(ctx, stream)
	if err != nil {
		return nil, err
	}
	return c.OpenLink(ctx, stream, end)
}

// name is the Name of stream's carrier, which names its connections.
func (cs *carrierPerStream) name(stream string) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.names[stream]
}

// Close deletes every stream's queues (the suite has closed their links by
// then) and closes its carrier.
func (cs *carrierPerStream) Close() error {
	cs.mu.Lock()
	cs.closed = true
	byStream := cs.byStream
	cs.byStream = nil
	cs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for stream, c := range byStream {
		errs = append(errs, c.DeleteStream(ctx, stream), c.Close())
	}
	return errors.Join(errs...)
}

func TestConformance(t *testing.T) {
	url := requireBroker(t)
	ctl := rabbitmqctl(t)
	cs := &carrierPerStream{
		cfg:      amqp.Config{URL: url, QueuePrefix: "bridge-test.", MaxFrameSize: 1 << 20, Logger: testLogger(t)},
		byStream: map[string]*amqp.Carrier{},
		names:    map[string]string{},
	}
	t.Cleanup(func() {
		if err := cs.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	// A stranger publishes with a connection and a channel of its own,
	// through the default exchange, straight to a stream's queues.
	stranger, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Close() })
	strangerCh, err := stranger.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var strangerMu sync.Mutex
	adaptertest.Run(t, adaptertest.Spec{
		Name:    "amqp",
		Carrier: cs,
		Cut: func(t testing.TB, stream string) {
			name := cs.name(stream)
			if n := cutConnections(t, ctl, name); n == 0 {
				t.Errorf("no connection of %s to cut", name)
			}
		},
		Inject: func(t testing.TB, stream string, to delivery.End, frame []byte) {
			queue := cs.cfg.QueuePrefix + stream + ".data"
			if to == delivery.ProducerEnd {
				queue = cs.cfg.QueuePrefix + stream + ".control"
			}
			strangerMu.Lock() // a channel is not for concurrent use
			defer strangerMu.Unlock()
			if err := strangerCh.PublishWithContext(context.Background(), "", queue, false, false, amqp091.Publishing{Body: frame}); err != nil {
				t.Errorf("stranger: publish to %s: %v", queue, err)
			}
		},
		Queue:        true,
		Release:      true,
		MaxFrameSize: 1 << 20,
	})
}
