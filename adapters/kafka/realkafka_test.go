package kafka_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// realKafka returns a carrier on the real Kafka that BRIDGE_TEST_KAFKA_BROKERS
// names (host:port, comma-separated). The test is skipped when the variable
// is unset, even under BRIDGE_TEST_REQUIRE_BROKERS=1 (CI has no real Kafka;
// the kfake tests stand in for it), and when the brokers do not answer,
// unless BRIDGE_TEST_REQUIRE_BROKERS=1, which makes that a failure.
func realKafka(t *testing.T) *kafka.Carrier {
	t.Helper()
	env := os.Getenv("BRIDGE_TEST_KAFKA_BROKERS")
	if env == "" {
		t.Skip("BRIDGE_TEST_KAFKA_BROKERS is not set: no real Kafka to test against (the kfake tests ran)")
	}
	var brokers []string
	for _, b := range strings.Split(env, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg := kafka.Config{Brokers: brokers, Logger: testLogger(t)}
	c, err := kafka.New(ctx, cfg)
	if err != nil {
		adaptertest.BrokerUnavailable(t, "BRIDGE_TEST_KAFKA_BROKERS=%s does not answer: %v", env, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deleteStreams deletes the topics and groups of the streams when the test
// ends, after its links are closed: the broker is shared and keeps them.
func deleteStreams(t *testing.T, c *kafka.Carrier, streams func() []string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, s := range streams() {
			if err := c.DeleteStream(ctx, s); err != nil {
				t.Errorf("delete stream %s: %v", s, err)
			}
		}
	})
}

// TestRealKafkaConformance runs the conformance suite on a real Kafka.
func TestRealKafkaConformance(t *testing.T) {
	c := realKafka(t)

	// The topics' limit on this cluster decides the frame limit the suite
	// checks: ask a link.
	probe := uniqueStream(t)
	deleteStreams(t, c, func() []string { return []string{probe} })
	ctx := testContext(t, time.Minute)
	l, err := c.Link(ctx, probe, delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	maxFrame := l.MaxFrameSize()
	l.Close()

	spec := conformanceSpec("kafka at "+os.Getenv("BRIDGE_TEST_KAFKA_BROKERS"), c)
	spec.Carrier = adaptertest.DeleteStreamsAtCleanup(t, c) // the broker is shared and keeps them
	spec.MaxFrameSize = maxFrame
	adaptertest.Run(t, spec)
}

// TestRealKafkaConsumerEndReopened: on a real Kafka, a consumer end closed
// mid-stream comes back on a new link and reads again from the committed
// offset; nothing is lost, each lifetime in order.
func TestRealKafkaConsumerEndReopened(t *testing.T) {
	c := realKafka(t)
	stream := uniqueStream(t)
	deleteStreams(t, c, func() []string { return []string{stream} })
	ctx := testContext(t, 2*time.Minute)
	const n = 600
	p := adaptertest.StartProducer(t, ctx, openLink(t, c, stream, delivery.ProducerEnd), adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)
	first := openLink(t, c, stream, delivery.ConsumerEnd)
	cons := adaptertest.StartConsumer(t, ctx, first, adaptertest.FastConsumer)
	got1 := cons.Take(ctx, func(i int, _ []int) bool { return i >= 220 }, func(i int, _ []int) bool { return i < 200 })
	cons.Kill()
	first.Close()
	cons = adaptertest.StartConsumer(t, ctx, openLink(t, c, stream, delivery.ConsumerEnd), adaptertest.FastConsumer)
	got2 := cons.TakeUpTo(ctx, n-1)
	again := adaptertest.CheckLifetimes(t, [][]int{got1, got2}, n)
	t.Logf("%d messages delivered again across the restart; consumer stats %+v", again, cons.Stats())
	p.Stop(ctx)
	cons.Stop(ctx)
}
