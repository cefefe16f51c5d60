package adaptertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Timings for tests: a lost message or control frame is recovered in tens
// of milliseconds.
var (
	FastProducer = delivery.ProducerSettings{ProducerID: "conformance", FirstResendInterval: 50 * time.Millisecond}
	FastConsumer = delivery.ConsumerSettings{Window: 50, ResendMin: 50 * time.Millisecond, ResendMax: 500 * time.Millisecond}
)

// Producer is a producer controller sending numbered test payloads (see
// Payload) in the background.
type Producer struct {
	*delivery.ProducerController[[]byte]
	t    testing.TB
	sent chan error // the sender's result: nil once every message was taken
	ran  chan error // Run's result
}

// StartProducer runs a producer controller on link and sends messages from,
// from+1, ..., from+n-1, message i of size(i) bytes.
func StartProducer(t testing.TB, ctx context.Context, link delivery.Link, s delivery.ProducerSettings, from, n int, size func(i int) int) *Producer {
	t.Helper()
	pc, err := delivery.NewProducerController[[]byte](link, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	p := &Producer{ProducerController: pc, t: t, sent: make(chan error, 1), ran: make(chan error, 1)}
	go func() { p.ran <- pc.Run(ctx) }()
	go func() {
		for i := from; i < from+n; i++ {
			if _, err := pc.Send(ctx, Payload(i, size(i))); err != nil {
				p.sent <- err
				return
			}
		}
		p.sent <- nil
	}()
	t.Cleanup(func() { pc.Close() })
	return p
}

// Stop shuts the producer down gracefully: it fails the test unless every
// message was sent and confirmed, and Run returned nil.
func (p *Producer) Stop(ctx context.Context) {
	p.t.Helper()
	select {
	case err := <-p.sent:
		if err != nil {
			p.t.Fatalf("producer: send: %v", err)
		}
	case <-ctx.Done():
		p.t.Fatalf("producer: still sending: %v (stats %+v)", ctx.Err(), p.Stats())
	}
	if err := p.Shutdown(ctx); err != nil {
		p.t.Fatalf("producer: shutdown: %v (stats %+v)", err, p.Stats())
	}
	if err := <-p.ran; err != nil {
		p.t.Fatalf("producer: Run: %v", err)
	}
}

// Kill stops the producer at once, as a crash would.
func (p *Producer) Kill() {
	p.Close()
	<-p.ran
}

// Consumer is a consumer controller whose deliveries the test takes.
type Consumer struct {
	*delivery.ConsumerController[[]byte]
	t   testing.TB
	ran chan error
}

// StartConsumer runs a consumer controller on link.
func StartConsumer(t testing.TB, ctx context.Context, link delivery.Link, s delivery.ConsumerSettings) *Consumer {
	t.Helper()
	cc, err := delivery.NewConsumerController[[]byte](link, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	c := &Consumer{ConsumerController: cc, t: t, ran: make(chan error, 1)}
	go func() { c.ran <- cc.Run(ctx) }()
	t.Cleanup(func() { cc.Close() })
	return c
}

// Take receives messages, checking each payload, until stop says so after
// one. Each is confirmed, unless confirm says not to. It returns the
// indexes received, in order.
func (c *Consumer) Take(ctx context.Context, stop func(i int, got []int) bool, confirm func(i int, got []int) bool) []int {
	c.t.Helper()
	var got []int
	for {
		d, err := c.Receive(ctx)
		if err != nil {
			c.t.Fatalf("consumer: after %d messages: %v (stats %+v)", len(got), err, c.Stats())
		}
		i, err := Index(d.Message)
		if err != nil {
			c.t.Fatal(err)
		}
		got = append(got, i)
		if confirm == nil || confirm(i, got) {
			d.Confirm()
		}
		if stop(i, got) {
			return got
		}
	}
}

// TakeWithFaults receives and confirms until message last arrives, and
// calls fault(k) once marks[k] messages have been taken. Each fault runs in
// a goroutine of its own, so the stream flows while it lands; the consumer
// holds at the next mark, and before the last message, until the fault
// before is done, so every fault lands inside the stream. fault must not
// call t.Fatal (it is not on the test's goroutine).
func (c *Consumer) TakeWithFaults(ctx context.Context, last int, marks []int, fault func(k int)) []int {
	c.t.Helper()
	var prev chan struct{}
	wait := func() {
		if prev != nil {
			select {
			case <-prev:
			case <-ctx.Done():
			}
		}
	}
	return c.Take(ctx, func(i int, got []int) bool {
		for k, m := range marks {
			if len(got) == m {
				wait()
				done := make(chan struct{})
				go func() {
					defer close(done)
					fault(k)
				}()
				prev = done
			}
		}
		if i == last {
			wait()
			return true
		}
		return false
	}, nil)
}

// TakeUpTo receives and confirms until message last arrives.
func (c *Consumer) TakeUpTo(ctx context.Context, last int) []int {
	c.t.Helper()
	return c.Take(ctx, func(i int, _ []int) bool { return i == last }, nil)
}

// Stop shuts the consumer down gracefully (deliver-then-stop): what it
// still hands out is confirmed and returned.
func (c *Consumer) Stop(ctx context.Context) []int {
	c.t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- c.Shutdown(ctx) }()
	var got []int
	for {
		d, err := c.Receive(ctx)
		if errors.Is(err, delivery.ErrClosed) {
			break
		}
		if err != nil {
			c.t.Fatalf("consumer: draining: %v", err)
		}
		i, err := Index(d.Message)
		if err != nil {
			c.t.Fatal(err)
		}
		got = append(got, i)
		d.Confirm()
	}
	if err := <-stopped; err != nil {
		c.t.Fatalf("consumer: shutdown: %v", err)
	}
	if err := <-c.ran; err != nil {
		c.t.Fatalf("consumer: Run: %v", err)
	}
	return got
}

// Kill stops the consumer at once, as a crash would.
func (c *Consumer) Kill() {
	c.Close()
	<-c.ran
}

// SmallMessages sizes messages from 16 to 271 bytes.
func SmallMessages(i int) int { return 16 + (i*37)%256 }
