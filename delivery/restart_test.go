package delivery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// TestConsumerRestart kills the consumer controller (Close, no graceful
// stop) three times mid-stream and starts a new one on the same pipe: every
// message arrives, each consumer lifetime sees them in order, and a new
// lifetime starts no later than where the previous one stopped. On a Queue
// pipe the frames the dead consumer did not release come back and are
// dropped as duplicates.
func TestConsumerRestart(t *testing.T) {
	for _, queue := range []bool{false, true} {
		for _, faulty := range []bool{false, true} {
			t.Run(fmt.Sprintf("queue=%v/faults=%v", queue, faulty), func(t *testing.T) {
				t.Parallel()
				opts := memory.Options{Queue: queue}
				if faulty {
					opts.Faults = memory.Faults{Seed: 7, Loss: 0.05, Duplicate: 0.05, Reorder: 0.05}
				}
				consumerRestarts(t, opts, 3000, 3)
			})
		}
	}
}

func consumerRestarts(t *testing.T, opts memory.Options, n, restarts int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pipe, err := memory.NewPipe(opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := fastProducer
	ps.ProducerID = "p"
	producer, err := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	waitProducer := run(t, ctx, producer)
	go func() {
		for i := range n {
			if _, err := producer.Send(ctx, adaptertest.Payload(i, 32)); err != nil {
				return
			}
		}
	}()

	cs := fastConsumer
	cs.Window = 50
	var lifetimes [][]int
	for life := 0; life <= restarts; life++ {
		consumer, err := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
		if err != nil {
			t.Fatal(err)
		}
		waitConsumer := run(t, ctx, consumer)
		var got []int
		for {
			d, err := consumer.Receive(ctx)
			if err != nil {
				t.Fatalf("lifetime %d after %d messages: %v", life, len(got), err)
			}
			i, err := adaptertest.Index(d.Message)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, i)
			quota := n / (restarts + 1)
			if life == restarts || len(got) <= quota {
				d.Confirm()
			}
			// A consumer to be killed takes five more without confirming
			// them: it dies in the middle of its work.
			if i == n-1 || (life < restarts && len(got) == quota+5) {
				break
			}
		}
		if life < restarts {
			consumer.Close() // killed: what it confirmed may not have reached the producer
		} else if err := consumer.Shutdown(ctx); err != nil {
			t.Fatal(err) // the last one stops cleanly and reports its confirmations
		}
		if err := waitConsumer(); err != nil {
			t.Fatal(err)
		}
		lifetimes = append(lifetimes, got)
	}
	if err := producer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitProducer(); err != nil {
		t.Fatal(err)
	}

	duplicates := adaptertest.CheckLifetimes(t, lifetimes, n)
	st := pipe.Stats()
	t.Logf("%d lifetimes, %d duplicates across restarts; pipe %+v", len(lifetimes), duplicates, st)
	if opts.Queue && st.Redelivered == 0 {
		t.Error("a queue pipe redelivered nothing after consumers died holding unreleased frames")
	}
}

// recordingLink keeps a copy of every frame sent through it.
type recordingLink struct {
	delivery.Link
	mu     sync.Mutex
	frames [][]byte
}

func (l *recordingLink) Send(ctx context.Context, frame []byte) error {
	l.mu.Lock()
	l.frames = append(l.frames, append([]byte(nil), frame...))
	l.mu.Unlock()
	return l.Link.Send(ctx, frame)
}

func (l *recordingLink) sent() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.frames...)
}

// injectingLink hands its receiver the frames pushed into inject before
// anything from the underlying link.
type injectingLink struct {
	delivery.Link
	inject chan []byte
}

func newInjectingLink(l delivery.Link) *injectingLink {
	return &injectingLink{Link: l, inject: make(chan []byte, 1024)}
}

func (l *injectingLink) Receive(ctx context.Context) (delivery.Frame, error) {
	select {
	case b := <-l.inject:
		return delivery.Frame{Data: b}, nil
	default:
	}
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		f   delivery.Frame
		err error
	}
	got := make(chan result, 1)
	go func() {
		f, err := l.Link.Receive(inner)
		got <- result{f, err}
	}()
	select {
	case b := <-l.inject:
		cancel()
		if r := <-got; r.err == nil {
			// A frame arrived as we gave up on it: keep it for the next call.
			go func() { l.inject <- r.f.Data }()
		}
		return delivery.Frame{Data: b}, nil
	case r := <-got:
		return r.f, r.err
	}
}

// TestProducerRestart replaces the producer by a new lifetime (a larger
// epoch) that numbers from 1 again, and then replays every frame of the old
// lifetime into the consumer, first messages included: the consumer follows
// the new numbering and drops all the late frames.
func TestProducerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	consumerLink := newInjectingLink(pipe.Consumer())
	cs := fastConsumer
	cs.Window = 8
	consumer, err := delivery.NewConsumerController[[]byte](consumerLink, nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	waitConsumer := run(t, ctx, consumer)

	const perLife = 50
	oldLink := &recordingLink{Link: pipe.Producer()}
	startProducer := func(link delivery.Link, epoch uint64, from int) (*delivery.ProducerController[[]byte], func() error) {
		ps := fastProducer
		ps.ProducerID, ps.Epoch = "p", epoch
		p, err := delivery.NewProducerController[[]byte](link, nil, ps)
		if err != nil {
			t.Fatal(err)
		}
		wait := run(t, ctx, p)
		go func() {
			for i := from; i < from+perLife; i++ {
				if _, err := p.Send(ctx, adaptertest.Payload(i, 16)); err != nil {
					return
				}
			}
		}()
		return p, wait
	}

	old, waitOld := startProducer(oldLink, 100, 0)
	got, err := consume(ctx, consumer, perLife)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitOld()

	newer, waitNew := startProducer(pipe.Producer(), 200, perLife)
	more, err := consume(ctx, consumer, 10)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, more...)
	for _, f := range oldLink.sent() {
		consumerLink.inject <- f
	}
	more, err = consume(ctx, consumer, perLife-10)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, more...)
	adaptertest.CheckExactlyOnceInOrder(t, got, 2*perLife)
	if err := newer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitNew()
	consumer.Close()
	waitConsumer()

	st := consumer.Stats()
	if st.Numberings != 2 || st.ProducerEpoch != 200 {
		t.Errorf("consumer followed %d numberings, now epoch %d; want 2, 200", st.Numberings, st.ProducerEpoch)
	}
	if st.Late < perLife {
		t.Errorf("consumer dropped %d late messages of the old epoch; want at least %d", st.Late, perLife)
	}
}

// TestProducerKilledWithoutDurableQueue kills a producer with messages
// unconfirmed: they are lost (the documented guarantee without a durable
// queue) and the consumer follows the next lifetime's numbering at once.
func TestProducerKilledWithoutDurableQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	cs := fastConsumer
	cs.Window = 20
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	waitConsumer := run(t, ctx, consumer)

	ps := fastProducer
	ps.ProducerID, ps.Epoch = "p", 1
	first, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	waitFirst := run(t, ctx, first)
	for i := range 5 {
		if _, err := first.Send(ctx, adaptertest.Payload(i, 16)); err != nil {
			t.Fatal(err)
		}
	}
	// The consumer takes the five and does not confirm them.
	var stale delivery.Delivery[[]byte]
	for range 5 {
		var err error
		if stale, err = consumer.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	waitFirst()

	ps.Epoch = 2
	second, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	waitSecond := run(t, ctx, second)
	go func() {
		for i := 100; i < 110; i++ {
			if _, err := second.Send(ctx, adaptertest.Payload(i, 16)); err != nil {
				return
			}
		}
	}()
	// A confirmation of the old lifetime's fifth message, made after the
	// consumer follows the new one, confirms none of the new one's.
	d, err := consumer.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale.Confirm()
	d.Confirm()
	for consumer.Stats().ConfirmedSeqNr < d.SeqNr {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("the new lifetime's first confirmation never counted: %+v", consumer.Stats())
		}
	}
	if st := consumer.Stats(); st.ConfirmedSeqNr != d.SeqNr {
		t.Fatalf("confirmed %d after the old lifetime's %d and the new one's %d: the stale confirmation counted", st.ConfirmedSeqNr, stale.SeqNr, d.SeqNr)
	}
	more, err := consume(ctx, consumer, 9)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]int{mustIndex(t, d.Message)}, more...)
	for k, i := range got {
		if i != 100+k {
			t.Fatalf("after the restart got message %d at %d; want the new lifetime's %d", i, k, 100+k)
		}
	}
	second.Close()
	waitSecond()
	consumer.Close()
	waitConsumer()
}

func mustIndex(t *testing.T, payload []byte) int {
	t.Helper()
	i, err := adaptertest.Index(payload)
	if err != nil {
		t.Fatal(err)
	}
	return i
}
