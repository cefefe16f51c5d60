package amqp_test

import (
	"context"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// openLink opens one end of stream and closes it at cleanup.
func openLink(t testing.TB, ctx context.Context, c *amqp.Carrier, stream string, end delivery.End) *amqp.Link {
	t.Helper()
	l, err := c.Link(ctx, stream, end)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// startStream opens both ends of stream on c and streams n small messages
// through them, from a fast producer to a consumer with streamConsumer's
// settings; everything closes at cleanup.
func startStream(t testing.TB, ctx context.Context, c *amqp.Carrier, stream string, n int) (consumerLink, producerLink *amqp.Link, cons *adaptertest.Consumer, p *adaptertest.Producer) {
	t.Helper()
	consumerLink = openLink(t, ctx, c, stream, delivery.ConsumerEnd)
	producerLink = openLink(t, ctx, c, stream, delivery.ProducerEnd)
	cons = adaptertest.StartConsumer(t, ctx, consumerLink, streamConsumer)
	p = adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)
	return consumerLink, producerLink, cons, p
}

// streamConsumer is the consumer settings of these tests: quick retries,
// the default window.
var streamConsumer = delivery.ConsumerSettings{ResendMin: 50 * time.Millisecond, ResendMax: 500 * time.Millisecond}

// TestCutsDuringStream closes every connection of the test's carrier from
// the broker's side four times during a stream of 20,000 messages: all
// arrive, once each, in order.
func TestCutsDuringStream(t *testing.T) {
	requireBroker(t)
	ctl := rabbitmqctl(t)
	const n = 20000
	stream := testName("cuts")
	name := testName("cuts")
	c := newCarrier(t, amqp.Config{Name: name}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	consumerLink, producerLink, cons, p := startStream(t, ctx, c, stream, n)

	// upAgain waits until both connections and all four channels are back
	// from the cuts so far, each reopened at least reconnects times in all.
	// Polled, within 30 s: the status has no event.
	upAgain := func(reconnects uint64) {
		up := func() bool {
			for _, st := range []delivery.LinkStatus{c.Status(), producerLink.Status(), consumerLink.Status()} {
				if !st.Connected || st.Reconnects < reconnects {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(30 * time.Second); !up() && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	closed := make([]int, 4)
	got := cons.TakeWithFaults(ctx, n-1, []int{n / 10, 3 * n / 10, n / 2, 7 * n / 10}, func(k int) {
		// Everything must be back from the cut before, or a slow machine
		// cuts one that is still reopening and the two losses count as one.
		upAgain(0)
		closed[k] = cutConnections(t, ctl, name)
	})
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	// The stream may end while the last cut's reconnect is still under way:
	// the statuses below are of the carrier and links back from all four.
	upAgain(8)
	p.Stop(ctx)
	cons.Stop(ctx)

	for k, m := range closed {
		if m != 2 {
			t.Errorf("cut %d closed %d connections; want both of the carrier's", k, m)
		}
	}
	ps, cs := producerLink.Stats(), consumerLink.Stats()
	t.Logf("carrier %+v; producer link %+v; consumer link %+v", c.Status(), ps, cs)
	t.Logf("producer %+v", p.Stats())
	t.Logf("consumer %+v", cons.Stats())
	if st := c.Status(); st.Reconnects < 8 || !st.Connected {
		t.Errorf("carrier status %+v after 4 cuts of 2 connections", st)
	}
	for _, l := range []*amqp.Link{producerLink, consumerLink} {
		if st := l.Status(); st.Reconnects < 8 {
			t.Errorf("%s link status %+v after 4 cuts; want both channels reopened each time", l.End(), st)
		}
	}
}

// TestConsumerRestartRedelivers closes the consumer end twice mid-stream,
// holding unconfirmed messages: the broker delivers the frames it did not
// release again to the next consumer end, the protocol drops what it
// already had, and each lifetime sees messages in order, together all of
// them.
func TestConsumerRestartRedelivers(t *testing.T) {
	requireBroker(t)
	const n, held = 6000, 100
	stream := testName("restart")
	c := newCarrier(t, amqp.Config{}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := adaptertest.StartProducer(t, ctx, openLink(t, ctx, c, stream, delivery.ProducerEnd), adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)
	var (
		lifetimes   [][]int
		redelivered uint64
		dropped     uint64
	)
	for life := range 3 {
		l := openLink(t, ctx, c, stream, delivery.ConsumerEnd)
		cons := adaptertest.StartConsumer(t, ctx, l, streamConsumer)
		if life == 2 {
			lifetimes = append(lifetimes, cons.TakeUpTo(ctx, n-1))
			cons.Stop(ctx)
		} else {
			quota := (life + 1) * n / 3
			lifetimes = append(lifetimes, cons.Take(ctx,
				func(i int, _ []int) bool { return i >= quota+held },
				func(i int, _ []int) bool { return i < quota })) // the last ones stay unconfirmed: their frames unacked
			cons.Kill() // closes the link: the broker takes back what it did not ack
		}
		st, ls := cons.Stats(), l.Stats()
		t.Logf("lifetime %d: %d deliveries; duplicates %d, foreign %d, late %d; link %+v",
			life, len(lifetimes[life]), st.Duplicates, st.Foreign, st.Late, ls)
		if life > 0 {
			redelivered += ls.Redelivered
			dropped += st.Duplicates + st.Foreign + st.Late
		}
	}
	dups := adaptertest.CheckLifetimes(t, lifetimes, n)
	t.Logf("%d messages delivered again to the application across two restarts", dups)
	if redelivered == 0 {
		t.Error("the broker delivered nothing again to the restarted consumer ends")
	}
	if dropped == 0 {
		t.Error("the restarted consumers dropped nothing: the redelivered frames should have been dropped as already received")
	}
	p.Stop(ctx)
}
