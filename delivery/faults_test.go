package delivery_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

var (
	seedCount = flag.Int("seeds", 6, "seeds per configuration in the randomised fault tests")
	firstSeed = flag.Uint64("seed", 1, "first seed of the randomised fault tests (a failure names its seed)")
)

// TestFaultyCarrier streams messages over a pipe that loses, duplicates,
// reorders and delays frames, for many seeds, windows and message sizes:
// the consumer application must get every message exactly once and in
// order, and every confirmation reply must arrive.
func TestFaultyCarrier(t *testing.T) {
	windows := []int{1, 2, 3, 7, 50, 1000}
	for _, chunked := range []bool{false, true} {
		for _, window := range windows {
			for seed := *firstSeed; seed < *firstSeed+uint64(*seedCount); seed++ {
				name := fmt.Sprintf("chunked=%v/window=%d/seed=%d", chunked, window, seed)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					faults := memory.Faults{Seed: seed, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Delay: 200 * time.Microsecond}
					streamOverFaults(t, faults, window, chunked, 300)
				})
			}
		}
	}
}

// streamOverFaults sends n messages over a pipe with the given faults and
// checks exactly-once, in-order delivery and every confirmation.
func streamOverFaults(t *testing.T, faults memory.Faults, window int, chunked bool, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pipe, err := memory.NewPipe(memory.Options{Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	ps := fastProducer
	ps.ProducerID = "p"
	if chunked {
		ps.ChunkSize = 64
	}
	cs := fastConsumer
	cs.Window = window
	producer, err := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	waitProducer := run(t, ctx, producer)
	waitConsumer := run(t, ctx, consumer)

	rng := rand.New(rand.NewPCG(faults.Seed, uint64(window)))
	sz := sizes(rng, n, chunked)
	confirmations := make(chan *delivery.Confirmation, n)
	sendErr := make(chan error, 1)
	go func() {
		defer close(confirmations)
		for i := range n {
			msg := adaptertest.Payload(i, sz[i])
			if i%7 == 0 {
				c, err := producer.SendWithConfirmation(ctx, msg)
				if err != nil {
					sendErr <- err
					return
				}
				confirmations <- c
				continue
			}
			if _, err := producer.Send(ctx, msg); err != nil {
				sendErr <- err
				return
			}
		}
	}()

	got, err := consume(ctx, consumer, n)
	if err != nil {
		t.Fatalf("consumer after %d messages: %v (pipe %+v)", len(got), err, pipe.Stats())
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	for c := range confirmations {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("confirmation of %d: %v", c.SeqNr(), err)
		}
	}
	select {
	case err := <-sendErr:
		t.Fatal(err)
	default:
	}
	if err := producer.Shutdown(ctx); err != nil {
		t.Fatalf("producer shutdown: %v (stats %+v)", err, producer.Stats())
	}
	consumer.Close()
	if err := waitProducer(); err != nil {
		t.Errorf("producer Run: %v", err)
	}
	if err := waitConsumer(); err != nil {
		t.Errorf("consumer Run: %v", err)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("pipe %+v\nproducer %+v\nconsumer %+v", pipe.Stats(), producer.Stats(), consumer.Stats())
	}
}
