package delivery_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// A registration grants the consumer's window (wire extension extWindow):
// the producer need not wait a round trip for the first request.

// TestRegistrationGrantsWindow: a registered consumer that has received
// nothing lets its producer take a whole window at once.
func TestRegistrationGrantsWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	waitProducer := run(t, ctx, producer)
	cs := fastConsumer
	cs.Window = 30
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	waitConsumer := run(t, ctx, consumer)
	for producer.Stats().Registrations == 0 {
		select {
		case <-time.After(time.Millisecond): // polling Stats: a registration tells no event
		case <-ctx.Done():
			t.Fatal("the consumer did not register:", ctx.Err())
		}
	}
	if d := producer.Demand(); d != cs.Window {
		t.Fatalf("demand after the registration = %d, want the window, %d", d, cs.Window)
	}
	for i := range cs.Window {
		if _, err := producer.TrySend(adaptertest.Payload(i, 8)); err != nil {
			t.Fatalf("message %d of the granted window: %v", i, err)
		}
	}
	got, err := consume(ctx, consumer, cs.Window)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, cs.Window)
	producer.Close()
	consumer.Close()
	waitProducer()
	waitConsumer()
}

// TestWorkPullingBurstSpreads: a burst as large as the workers' windows
// together, sent once every worker granted its window, is shared evenly,
// rather than going to the workers whose first request happened to come
// back first.
func TestWorkPullingBurstSpreads(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := wpCarrier(t)
	ps, ws := wpTimings()
	ws.Window = 20
	const workers = 3
	p, _ := startWP(t, ctx, c, "s", ps)
	for k := range workers {
		ws.WorkerID = fmt.Sprint("w", k)
		w, err := delivery.NewWorkerController[[]byte](ctx, c, "s", nil, ws)
		if err != nil {
			t.Fatal(err)
		}
		wait := run(t, ctx, w)
		t.Cleanup(func() { w.Close(); wait() })
	}
	waitWP(t, ctx, p, "every worker granting", func(st delivery.WorkPullingStats) bool { return st.GrantedWorkers() == workers })
	for i := range workers * ws.Window {
		if _, err := p.TrySend(adaptertest.Payload(i, 8)); err != nil {
			t.Fatalf("message %d of %d granted: %v (%+v)", i, workers*ws.Window, err, p.Stats())
		}
	}
	for _, w := range p.Stats().Workers {
		if w.InFlight != ws.Window {
			t.Errorf("worker %s holds %d, want %d: %+v", w.ID, w.InFlight, ws.Window, p.Stats().Workers)
		}
	}
}
