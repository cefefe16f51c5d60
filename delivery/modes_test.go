package delivery_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// TestConsumerRegistersWithProducer: the producer's first message goes out
// before any consumer is attached and is lost; the producer would repeat it
// only after an hour. The consumer's registration makes it send again.
func TestConsumerRegistersWithProducer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "p", FirstResendInterval: time.Hour})
	waitProducer := run(t, ctx, producer)
	if _, err := producer.Send(ctx, adaptertest.Payload(0, 8)); err != nil {
		t.Fatal(err)
	}
	if err := pipe.WaitFor(ctx, func(s memory.Stats) bool { return s.Dropped == 1 }); err != nil {
		t.Fatal("the first message was not lost:", err)
	}

	cs := fastConsumer
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	waitConsumer := run(t, ctx, consumer)
	got, err := consume(ctx, consumer, 1)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, 1)
	if producer.Stats().Registrations == 0 {
		t.Error("delivered without a registration")
	}
	producer.Close()
	consumer.Close()
	waitProducer()
	waitConsumer()
}

// TestProducerToldItsConsumer: the consumer's registration goes out before
// any producer is attached and is lost, and it would repeat it only after
// an hour. The producer, whose link is its consumer, sends its first
// message unasked.
func TestProducerToldItsConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil,
		delivery.ConsumerSettings{ResendMin: time.Hour, ResendMax: time.Hour})
	waitConsumer := run(t, ctx, consumer)
	if err := pipe.WaitFor(ctx, func(s memory.Stats) bool { return s.Dropped == 1 }); err != nil {
		t.Fatal("the registration was not lost:", err)
	}

	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	waitProducer := run(t, ctx, producer)
	go func() {
		for i := range 100 {
			if _, err := producer.Send(ctx, adaptertest.Payload(i, 8)); err != nil {
				return
			}
		}
	}()
	got, err := consume(ctx, consumer, 100)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, 100)
	if n := producer.Stats().Registrations; n != 0 {
		t.Errorf("producer saw %d registrations; the test wants none to arrive", n)
	}
	producer.Close()
	consumer.Close()
	waitProducer()
	waitConsumer()
}

// TestOnlyFlowControl: with resending off, what is lost stays lost, but
// what arrives arrives once and in order, and the producer never resends.
func TestOnlyFlowControl(t *testing.T) {
	for _, faults := range []memory.Faults{
		{},
		{Seed: 3, Loss: 0.2, Duplicate: 0.2, Reorder: 0.2},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		pipe, _ := memory.NewPipe(memory.Options{Faults: faults})
		ps := fastProducer
		ps.ProducerID = "p"
		producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
		cs := fastConsumer
		cs.OnlyFlowControl, cs.Window = true, 20
		consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
		waitProducer := run(t, ctx, producer)
		waitConsumer := run(t, ctx, consumer)

		// The producer sends until the consumer has seen message 2000 or
		// later: the tail may be lost too.
		const n = 2000
		go func() {
			for i := 0; ; i++ {
				if _, err := producer.Send(ctx, adaptertest.Payload(i, 16)); err != nil {
					return
				}
			}
		}()
		var got []int
		// Until the producer hears from the consumer it may send the
		// first messages again: it answers the registration with what it
		// sent, and resends the first message every FirstResendInterval
		// until a request comes (under load, more than once). A message
		// past the first window is sent only once it has heard; from then
		// on nothing is resent in this mode.
		resentBeforeHeard := ^uint64(0)
		for len(got) == 0 || got[len(got)-1] < n {
			d, err := consumer.Receive(ctx)
			if err != nil {
				t.Fatalf("%v after %d; producer %+v consumer %+v pipe %+v", err, len(got), producer.Stats(), consumer.Stats(), pipe.Stats())
			}
			i, err := adaptertest.Index(d.Message)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 && i <= got[len(got)-1] {
				t.Fatalf("message %d after %d: a duplicate or a reordering", i, got[len(got)-1])
			}
			if resentBeforeHeard == ^uint64(0) && i >= int(cs.Window) {
				resentBeforeHeard = producer.Stats().Resent
			}
			got = append(got, i)
			d.Confirm()
		}
		ps2, cs2 := producer.Stats(), consumer.Stats()
		if faults.Loss == 0 && ps2.Resent != resentBeforeHeard {
			t.Errorf("the producer resent %d messages in only-flow-control mode after it heard from the consumer (%d before)", ps2.Resent-resentBeforeHeard, resentBeforeHeard)
		}
		lost := got[len(got)-1] + 1 - len(got)
		if faults.Loss == 0 && lost != 0 {
			t.Errorf("a perfect pipe lost %d messages", lost)
		}
		t.Logf("faults %+v: %d delivered, %d lost; consumer %+v", faults, len(got), lost, cs2)
		cancel()
		producer.Close()
		consumer.Close()
		waitProducer()
		waitConsumer()
	}
}

// TestDeliverThenStop: a consumer shut down mid-stream hands out what it
// buffered, reports its confirmations, and stops; the next consumer starts
// exactly where it stopped, with nothing lost and nothing twice.
func TestDeliverThenStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	ps := fastProducer
	ps.ProducerID = "p"
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	waitProducer := run(t, ctx, producer)
	const n = 1000
	go func() {
		for i := range n {
			if _, err := producer.Send(ctx, adaptertest.Payload(i, 16)); err != nil {
				return
			}
		}
	}()

	cs := fastConsumer
	cs.Window = 100
	var all []int
	for life := 0; life < 2; life++ {
		consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
		waitConsumer := run(t, ctx, consumer)
		stopped := make(chan error, 1)
		var got []int
		for {
			d, err := consumer.Receive(ctx)
			if errors.Is(err, delivery.ErrClosed) && life == 0 {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			i, _ := adaptertest.Index(d.Message)
			got = append(got, i)
			d.Confirm()
			if life == 0 && len(got) == 300 {
				go func() { stopped <- consumer.Shutdown(ctx) }()
			}
			if i == n-1 {
				break
			}
		}
		if life == 0 {
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			if len(got) < 300 {
				t.Fatalf("first consumer stopped after %d", len(got))
			}
		} else {
			consumer.Shutdown(ctx)
		}
		if err := waitConsumer(); err != nil {
			t.Fatal(err)
		}
		t.Logf("lifetime %d: messages %d to %d", life, got[0], got[len(got)-1])
		all = append(all, got...)
	}
	adaptertest.CheckExactlyOnceInOrder(t, all, n)
	if err := producer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitProducer()
}

// TestProducerShutdownTimesOut: with no consumer, Shutdown gives up when its
// context ends, says how much was left, and fails pending confirmations.
func TestProducerShutdownTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	waitProducer := run(t, ctx, producer)
	c, err := producer.SendWithConfirmation(ctx, adaptertest.Payload(0, 8))
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	err = producer.Shutdown(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v; want a deadline error", err)
	}
	t.Log(err)
	if err := c.Wait(ctx); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("pending confirmation = %v; want ErrClosed", err)
	}
	if _, err := producer.Send(ctx, adaptertest.Payload(1, 8)); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("Send after shutdown = %v; want ErrClosed", err)
	}
	if err := waitProducer(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestReleaseAfterConfirm: on a queue-backed carrier a frame is released
// only once the application confirmed its messages, and all are released in
// the end.
func TestReleaseAfterConfirm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{Queue: true})
	// No timer may send anything again while the test looks.
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "p", FirstResendInterval: time.Hour})
	consumerLink := pipe.Consumer()
	consumer, _ := delivery.NewConsumerController[[]byte](consumerLink, nil,
		delivery.ConsumerSettings{ResendMin: time.Hour, ResendMax: time.Hour})
	waitConsumer := run(t, ctx, consumer)
	waitProducer := run(t, ctx, producer)
	// The producer releases the consumer's registration once it has
	// handled it; only then is the one message sent once.
	if err := pipe.WaitFor(ctx, func(s memory.Stats) bool { return s.Released == 1 }); err != nil {
		t.Fatal(err)
	}

	if _, err := producer.Send(ctx, adaptertest.Payload(0, 8)); err != nil {
		t.Fatal(err)
	}
	d, err := consumer.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := consumerLink.Unreleased(); n != 1 {
		t.Fatalf("before the confirmation %d frames are unreleased; want 1", n)
	}
	d.Confirm()
	if err := pipe.WaitFor(ctx, func(memory.Stats) bool { return consumerLink.Unreleased() == 0 }); err != nil {
		t.Fatal("the frame was not released after the confirmation:", err)
	}

	go func() {
		for i := 1; i < 500; i++ {
			producer.Send(ctx, adaptertest.Payload(i, 8))
		}
	}()
	if _, err := consume(ctx, consumer, 499); err != nil {
		t.Fatal(err)
	}
	if err := pipe.WaitFor(ctx, func(memory.Stats) bool { return consumerLink.Unreleased() == 0 }); err != nil {
		t.Fatalf("%d frames never released: %v", consumerLink.Unreleased(), err)
	}
	producer.Close()
	consumer.Close()
	waitProducer()
	waitConsumer()
}

// stuckLink, once stuck, blocks every Send until its context ends, as a
// link whose peer is gone and never comes back; blocked is closed when a
// Send first waits.
type stuckLink struct {
	delivery.Link
	stuck   atomic.Bool
	once    sync.Once
	blocked chan struct{}
}

func (l *stuckLink) Send(ctx context.Context, frame []byte) error {
	if !l.stuck.Load() {
		return l.Link.Send(ctx, frame)
	}
	l.once.Do(func() { close(l.blocked) })
	<-ctx.Done()
	return ctx.Err()
}

// TestDeliverThenStopWithProducerGone: a consumer whose producer has gone,
// with its writer stuck in a Send that will never complete, still stops
// promptly once everything is delivered and confirmed, rather than wait on
// the dead peer until its context ends. (Found by the durable queue's
// SIGKILL test.)
func TestDeliverThenStopWithProducerGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	ps := fastProducer
	ps.ProducerID = "p"
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	cs := fastConsumer
	cs.ResendMin, cs.ResendMax = 50*time.Millisecond, 50*time.Millisecond
	link := &stuckLink{Link: pipe.Consumer(), blocked: make(chan struct{})}
	consumer, _ := delivery.NewConsumerController[[]byte](link, nil, cs)
	waitProducer := run(t, ctx, producer)
	waitConsumer := run(t, ctx, consumer)
	if _, err := producer.Send(ctx, adaptertest.Payload(0, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := consume(ctx, consumer, 1); err != nil {
		t.Fatal(err)
	}
	producer.Close()
	waitProducer()
	link.stuck.Store(true)
	select {
	case <-link.blocked: // the consumer's retry is stuck in Send
	case <-ctx.Done():
		t.Fatal("the consumer never sent again")
	}
	start := time.Now()
	if err := consumer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown took %v with nothing left to deliver", took)
	}
	if err := waitConsumer(); err != nil {
		t.Error(err)
	}
}
