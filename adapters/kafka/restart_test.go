package kafka_test

import (
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// TestConsumerEndReopened: the consumer side dies mid-stream holding frames
// it has not released, and its link is closed; a new consumer on a new link
// reads again from the committed offset, the protocol drops what it got
// twice, and the two lifetimes together see every message, each in order.
// On the test Kafka (Apache Kafka under `make test`; kfake in a plain `go
// test` with none running).
func TestConsumerEndReopened(t *testing.T) {
	t.Parallel()
	c, brokers, _ := testKafka(t, kafka.Config{})
	ctx := testContext(t, 2*time.Minute)
	stream := newStream(t, c)
	const n, confirmed = 1000, 300

	p := adaptertest.StartProducer(t, ctx, openLink(t, c, stream, delivery.ProducerEnd), adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)

	first := openLink(t, c, stream, delivery.ConsumerEnd)
	dataTopic, _, group := kafka.Topics(first)
	cons := adaptertest.StartConsumer(t, ctx, first, adaptertest.FastConsumer)
	// Past the last confirmed message by less than the window (50), so the
	// producer can send that far.
	got1 := cons.Take(ctx,
		func(i int, _ []int) bool { return i >= confirmed+20 },
		func(i int, _ []int) bool { return i < confirmed })
	cons.Kill()
	_, lastRead := kafka.OffsetsRead(first)
	first.Close() // commits what was released
	committed := committedOffset(t, brokers[0], group, dataTopic)
	t.Logf("first lifetime: %d messages, frames read up to offset %d, offset %d committed", len(got1), lastRead, committed)
	if committed <= 0 || committed > lastRead {
		t.Fatalf("committed offset %d; want the released frames committed (> 0) and the unreleased ones not (<= %d)", committed, lastRead)
	}

	second := openLink(t, c, stream, delivery.ConsumerEnd)
	cons = adaptertest.StartConsumer(t, ctx, second, adaptertest.FastConsumer)
	got2 := cons.TakeUpTo(ctx, n-1)
	if firstRead, _ := kafka.OffsetsRead(second); firstRead != committed {
		t.Errorf("the new consumer end started reading at offset %d; want the committed offset %d", firstRead, committed)
	}
	again := adaptertest.CheckLifetimes(t, [][]int{got1, got2}, n)
	st := cons.Stats()
	t.Logf("second lifetime: %d messages, %d delivered again to the application; the protocol dropped %d duplicates, %d of a numbering it had not joined, %d late",
		len(got2), again, st.Duplicates, st.Foreign, st.Late)
	if st.Duplicates+st.Foreign+st.Late == 0 {
		t.Errorf("the frames read again (offsets %d to %d) reached the consumer controller, yet it dropped nothing", committed, lastRead)
	}
	p.Stop(ctx)
	cons.Stop(ctx)
}

// TestBrokerRestart: the broker stops mid-stream and starts again at the
// same address. Both links reconnect by themselves; the stream completes,
// every message once and in order, as the protocol guarantees for any
// carrier fault without an application crash.
//
// DataKept: the broker comes back with its data, and the links carry on
// where they were: the test Kafka, stopped and started through its control
// command (.ci/kafka) under `make test`, or kfake with a data directory in a
// plain `go test`. Not parallel: it has the test Kafka to itself meanwhile.
//
// DataLost: a new broker at the address has lost every topic, record and
// committed offset: the links create the topics again, the consumer end
// finds its offset beyond the new log and reads it from the start, and the
// producer resends what was not confirmed (the lost frames among it). Always
// kfake: a real broker that lost its log would take every other test's
// topics with it.
func TestBrokerRestart(t *testing.T) {
	t.Run("DataLost", func(t *testing.T) {
		t.Parallel()
		broker := startBroker(t)
		testBrokerRestart(t, restartable{brokers: []string{broker.addr()}, name: "kfake", stop: broker.stop, start: broker.start}, false)
	})
	t.Run("DataKept", func(t *testing.T) {
		testBrokerRestart(t, restartableBroker(t), true)
	})
}

func testBrokerRestart(t *testing.T, broker restartable, persist bool) {
	t.Logf("on %s", broker.name)
	c := newCarrier(t, kafka.Config{Brokers: broker.brokers, RetryBackoff: 200 * time.Millisecond})
	ctx := testContext(t, 2*time.Minute)
	stream := newStream(t, c)
	const n = 2000

	consumerLink := openLink(t, c, stream, delivery.ConsumerEnd)
	producerLink := openLink(t, c, stream, delivery.ProducerEnd)
	cons := adaptertest.StartConsumer(t, ctx, consumerLink, adaptertest.FastConsumer)
	p := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)
	restarted := false
	got := cons.Take(ctx, func(i int, got []int) bool {
		if !restarted && len(got) == n/3 {
			restarted = true
			broker.stop()
			waitFor(t, 10*time.Second, "both links to see the broker gone", func() bool {
				return !producerLink.Status().Connected && !consumerLink.Status().Connected
			})
			if st := c.Status(); st.Connected || st.Err == nil {
				t.Errorf("the carrier reports %+v with its links down; want not connected, and why", st)
			}
			broker.start()
		}
		return i == n-1
	}, nil)
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	p.Stop(ctx)
	st := cons.Stats()
	cons.Stop(ctx)
	t.Logf("consumer: %d duplicates, %d gap drops, %d resend requests, %d retries; producer: %+v", st.Duplicates, st.GapDrops, st.ResendRequests, st.Retries, p.Stats())
	waitFor(t, 10*time.Second, "the carrier connected again", func() bool { return c.Status().Connected })
	if st, sum := c.Status(), producerLink.Status().Reconnects+consumerLink.Status().Reconnects; st.Reconnects != sum || st.Err != nil {
		t.Errorf("the carrier reports %+v; want its links' %d reconnects, and no error", st, sum)
	}
	for _, l := range []*kafka.Link{producerLink, consumerLink} {
		s := l.Status()
		if !s.Connected || s.Reconnects == 0 {
			t.Errorf("the %v end reports %+v after the broker came back; want connected, with a reconnect", l.End(), s)
		}
		restarts := kafka.LogRestarts(l)
		t.Logf("the %v end read its topic from the start again %d times", l.End(), restarts)
		if persist && restarts > 0 {
			t.Errorf("the %v end started its topic over although the broker kept it", l.End())
		}
	}
}
