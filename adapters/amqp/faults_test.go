package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// TestNewUnreachable: a broker that is not there, or does not answer, is a
// clear error from New, as soon as the connection is refused or ctx ends.
func TestNewUnreachable(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		url := "amqp://guest:s3cret@" + addr + "/"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err = amqp.New(ctx, amqp.Config{URL: url})
		took := time.Since(start)
		var ce *amqp.ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("New returned %v; want a *ConnectError", err)
		}
		if msg := err.Error(); !strings.Contains(msg, addr) || strings.Contains(msg, "s3cret") {
			t.Errorf("error %q should name the URL %s, without its password", msg, addr)
		}
		if took > 2*time.Second {
			t.Errorf("New took %v to report a refused connection", took)
		}
		t.Logf("after %v: %v", took, err)
	})

	t.Run("silent", func(t *testing.T) {
		// A listener that accepts and never speaks AMQP: only ctx ends the
		// handshake.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = amqp.New(ctx, amqp.Config{URL: "amqp://guest:guest@" + l.Addr().String() + "/"})
		took := time.Since(start)
		var ce *amqp.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("New returned %v; want a *ConnectError wrapping the context's deadline", err)
		}
		if took > 2*time.Second {
			t.Errorf("New took %v with a context of 300ms", took)
		}
		t.Logf("after %v: %v", took, err)
	})

	t.Run("config", func(t *testing.T) {
		_, err := amqp.New(context.Background(), amqp.Config{Prefetch: -1})
		var ce *amqp.ConfigError
		if !errors.As(err, &ce) || ce.Field != "Prefetch" {
			t.Fatalf("New returned %v; want a *ConfigError naming Prefetch", err)
		}
	})
}

// TestDeletedQueuesResume deletes the data queue, then the control queue,
// under a running stream, as an operator might: the broker cancels the
// consumers, the links notice, declare the queues again and resume, and
// the protocol resends what was lost with them.
func TestDeletedQueuesResume(t *testing.T) {
	requireBroker(t)
	const n = 10000
	stream := testName("deleted")
	c := newCarrier(t, amqp.Config{}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	consumerLink, producerLink, cons, p := startStream(t, ctx, c, stream, n)

	queues := []string{"bridge-test." + stream + ".data", "bridge-test." + stream + ".control"}
	got := cons.TakeWithFaults(ctx, n-1, []int{n / 4, n / 2}, func(k int) {
		withAdminChannel(t, func(ch *amqp091.Channel) {
			purged, err := ch.QueueDelete(queues[k], false, false, false)
			if err != nil {
				t.Errorf("delete %s: %v", queues[k], err)
			}
			t.Logf("deleted %s with %d frames in it", queues[k], purged)
		})
		// Until the end that consumes the queue notices, so that both
		// deletions fall under a running stream (a window's messages may
		// come in one frame, and the stream end right after them).
		consuming := []*amqp.Link{consumerLink, producerLink}[k]
		for consuming.Stats().Cancels == 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // polling: the link tells no event of a cancel
		}
	})
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	p.Stop(ctx)
	cons.Stop(ctx)

	cs, ps := consumerLink.Stats(), producerLink.Stats()
	t.Logf("consumer link %+v; producer link %+v", cs, ps)
	if cs.Cancels == 0 {
		t.Error("the consumer end did not notice its data queue was deleted")
	}
	if ps.Cancels == 0 {
		t.Error("the producer end did not notice its control queue was deleted")
	}
}

// TestPassiveUnroutable: with Config.Passive the carrier declares nothing,
// so a missing exchange or queue is an error: from Link at once, and from
// Send once the queue goes away under a running link (the broker returns
// the mandatory publish); once the operator restores the queue, frames
// flow again.
func TestPassiveUnroutable(t *testing.T) {
	requireBroker(t)
	stream := testName("passive")
	cfg := amqp.Config{Passive: true, ReconnectMax: 300 * time.Millisecond}
	c := newCarrier(t, cfg, stream)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("missing queue", func(t *testing.T) {
		_, err := c.Link(ctx, stream, delivery.ProducerEnd)
		var de *amqp.DeclareError
		var ae *amqp091.Error
		if !errors.As(err, &de) || !errors.As(err, &ae) || ae.Code != amqp091.NotFound {
			t.Fatalf("Link on missing queues returned %v; want a *DeclareError with the broker's 404", err)
		}
		t.Log(err)
	})

	t.Run("missing exchange", func(t *testing.T) {
		cfg := cfg
		cfg.Exchange = testName("missing-exchange")
		other := newCarrier(t, cfg)
		_, err := other.Link(ctx, stream, delivery.ProducerEnd)
		var de *amqp.DeclareError
		if !errors.As(err, &de) || de.Kind != "exchange" {
			t.Fatalf("Link through a missing exchange returned %v; want a *DeclareError for the exchange", err)
		}
		t.Log(err)
	})

	data, control := "bridge-test."+stream+".data", "bridge-test."+stream+".control"
	declareQueues := func(names ...string) {
		withAdminChannel(t, func(ch *amqp091.Channel) {
			for _, q := range names {
				if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
					t.Fatalf("declare %s: %v", q, err)
				}
			}
		})
	}
	declareQueues(data, control)
	producer := openLink(t, ctx, c, stream, delivery.ProducerEnd)
	consumer := openLink(t, ctx, c, stream, delivery.ConsumerEnd)
	send := func(i int) error { return producer.Send(ctx, adaptertest.Payload(i, 64)) }
	receive := func() int {
		t.Helper()
		f, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i, err := adaptertest.Index(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		f.Release()
		return i
	}
	for i := range 3 {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
		if got := receive(); got != i {
			t.Fatalf("received frame %d; want %d", got, i)
		}
	}

	deleteQueues(t, data)
	// Each frame sent now is returned (or, once the publisher has checked
	// the queue again, refused); Send says so.
	var sendErr error
	for i := 3; sendErr == nil; i++ {
		if ctx.Err() != nil {
			t.Fatal("Send never reported the missing queue")
		}
		sendErr = send(i)
		if sendErr == nil {
			time.Sleep(10 * time.Millisecond) // polling: the return arrives asynchronously
		}
	}
	var de *amqp.DeclareError
	if !errors.Is(sendErr, amqp.ErrUnroutable) && !errors.As(sendErr, &de) {
		t.Fatalf("Send returned %v; want an *UnroutableError or a *DeclareError", sendErr)
	}
	t.Logf("Send: %v", sendErr)
	if st := producer.Status(); st.Connected || st.Err == nil {
		t.Errorf("producer link status %+v with its queue gone", st)
	}
	if ps := producer.Stats(); ps.Returned == 0 {
		t.Errorf("no frame returned: %+v", ps)
	}

	declareQueues(data)
	const marker = 1000
	for {
		err := send(marker)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Send still fails after the queue is back: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling: the publisher checks the queue again with backoff
	}
	// Frames held while the queue was gone come first, then the marker.
	for receive() != marker {
	}
	if st := producer.Status(); !st.Connected {
		t.Errorf("producer link status %+v with its queue back", st)
	}
}

// TestClosedChannelsRecover makes the broker close each of the four AMQP
// channels of a stream with a channel error, mid-stream: the links open
// new channels and the stream completes, once and in order.
func TestClosedChannelsRecover(t *testing.T) {
	requireBroker(t)
	const n = 10000
	stream := testName("channels")
	c := newCarrier(t, amqp.Config{}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	consumerLink, producerLink, cons, p := startStream(t, ctx, c, stream, n)

	// An ack of a tag the channel never delivered is a 406 channel error; a
	// publish to a missing exchange a 404.
	breakConsuming := func(l *amqp.Link) error {
		return waitChannel(ctx, l.ConsumeChannel).Ack(1<<40, false)
	}
	breakPublishing := func(l *amqp.Link) error {
		return waitChannel(ctx, l.PublishChannel).Publish(testName("missing-exchange"), "x", false, false, amqp091.Publishing{})
	}
	faults := []func() error{
		func() error { return breakConsuming(consumerLink) },
		func() error { return breakPublishing(producerLink) },
		func() error { return breakConsuming(producerLink) },
		func() error { return breakPublishing(consumerLink) },
	}
	got := cons.TakeWithFaults(ctx, n-1, []int{n / 6, 2 * n / 6, 3 * n / 6, 4 * n / 6}, func(k int) {
		if err := faults[k](); err != nil {
			t.Errorf("fault %d: %v", k, err)
		}
	})
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	p.Stop(ctx)
	cons.Stop(ctx)
	for _, l := range []*amqp.Link{producerLink, consumerLink} {
		st := l.Status()
		t.Logf("%s link: %+v, %+v", l.End(), st, l.Stats())
		if st.Reconnects < 2 {
			t.Errorf("%s link reopened %d channels; want both", l.End(), st.Reconnects)
		}
	}
}

// waitChannel polls for a link's current channel (nil between sessions).
func waitChannel(ctx context.Context, current func() *amqp091.Channel) *amqp091.Channel {
	for {
		if ch := current(); ch != nil || ctx.Err() != nil {
			return ch
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestExchange: with Config.Exchange the carrier declares the exchange,
// binds both queues to it, and frames flow through it both ways.
func TestExchange(t *testing.T) {
	requireBroker(t)
	stream := testName("exchange")
	exchange := testName("exchange")
	t.Cleanup(func() {
		withAdminChannel(t, func(ch *amqp091.Channel) {
			if err := ch.ExchangeDelete(exchange, false, false); err != nil {
				t.Errorf("delete exchange %s: %v", exchange, err)
			}
		})
	})
	c := newCarrier(t, amqp.Config{Exchange: exchange}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 200
	_, _, cons, p := startStream(t, ctx, c, stream, n)
	adaptertest.CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
	p.Stop(ctx)
	cons.Stop(ctx)
}

// TestLifecycle: bad stream names and ends are refused; a closed link
// refuses Send and Receive with delivery.ErrLinkClosed; Carrier.Close
// closes its links and refuses new ones; every Close is idempotent.
func TestLifecycle(t *testing.T) {
	requireBroker(t)
	stream := testName("lifecycle")
	c := newCarrier(t, amqp.Config{}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var se *amqp.StreamNameError
	for _, bad := range []string{"", strings.Repeat("s", 250), "\xff"} {
		if _, err := c.Link(ctx, bad, delivery.ProducerEnd); !errors.As(err, &se) {
			t.Errorf("Link(%q) returned %v; want a *StreamNameError", bad, err)
		}
	}
	if _, err := c.Link(ctx, stream, delivery.End(7)); err == nil {
		t.Error("Link with an unknown end succeeded")
	}

	l := openLink(t, ctx, c, stream, delivery.ProducerEnd)
	if st := l.Status(); !st.Connected || st.Err != nil {
		t.Errorf("new link status %+v", st)
	}
	if err := l.Send(ctx, make([]byte, amqp.DefaultMaxFrameSize+1)); err == nil {
		t.Error("Send took a frame over MaxFrameSize")
	}
	l.Close()
	l.Close()
	if err := l.Send(ctx, []byte("x")); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Send after Close returned %v", err)
	}
	if _, err := l.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Receive after Close returned %v", err)
	}
	if st := l.Status(); st.Connected || !errors.Is(st.Err, delivery.ErrLinkClosed) {
		t.Errorf("closed link status %+v", st)
	}

	open := openLink(t, ctx, c, stream, delivery.ConsumerEnd)
	received := make(chan error, 1)
	go func() {
		_, err := open.Receive(ctx)
		received <- err
	}()
	if st := c.Status(); !st.Connected {
		t.Errorf("carrier status %+v", st)
	}
	c.Close()
	c.Close()
	if err := <-received; !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Receive blocked across Carrier.Close returned %v", err)
	}
	if _, err := c.Link(ctx, stream, delivery.ProducerEnd); !errors.Is(err, amqp.ErrClosed) {
		t.Errorf("Link after Close returned %v", err)
	}
	if st := c.Status(); st.Connected || !errors.Is(st.Err, amqp.ErrClosed) {
		t.Errorf("closed carrier status %+v", st)
	}
}

// ExampleUnroutableError shows how a caller tells the errors of Send apart.
func ExampleUnroutableError() {
	err := fmt.Errorf("amqp: send to queue %q: %w", "bridge.orders.data",
		&amqp.UnroutableError{RoutingKey: "bridge.orders.data", Code: 312, Reason: "NO_ROUTE"})
	var ue *amqp.UnroutableError
	fmt.Println(errors.Is(err, amqp.ErrUnroutable), errors.As(err, &ue), ue.Code)
	// Output: true true 312
}
