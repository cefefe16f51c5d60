package kafka_test

import (
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
	"go.uber.org/goleak"
)

// TestCloseLeavesNoGoroutines: once Carrier.Close returns, the goroutines of
// its links and of their kafka-go Readers and Transports are gone. Not
// parallel, so no other test's goroutines come and go meanwhile. On the test
// Kafka (Apache Kafka under `make test`; kfake in a plain `go test` with
// none running).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	brokers, _ := adaptertest.KafkaOrKfake(t)
	before := goleak.IgnoreCurrent() // kfake's goroutines, if it is kfake
	c, err := kafka.New(testContext(t, 30*time.Second), kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	stream := newStream(t, c) // deleted once the test is over, after the check
	consumerLink, err := c.Link(ctx, stream, delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	producerLink, err := c.Link(ctx, stream, delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	cons := adaptertest.StartConsumer(t, ctx, consumerLink, adaptertest.FastConsumer)
	p := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, 100, adaptertest.SmallMessages)
	adaptertest.CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, 99), 100)
	p.Stop(ctx)
	cons.Stop(ctx)
	kafka.CutConnections(consumerLink) // reconnecting goroutines, too, must end
	c.Close()
	// kafka-go ends a closed connection's goroutine when it next looks at
	// it, which on a loaded machine can take longer than goleak's own
	// retries (about 2 s): a leak is one still there after 15 s.
	for deadline := time.Now().Add(15 * time.Second); goleak.Find(before) != nil && time.Now().Before(deadline); {
	}
	goleak.VerifyNone(t, before)
}
