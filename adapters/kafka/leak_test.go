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
// parallel, so no other test's goroutines come and go meanwhile.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	broker := startBroker(t)
	before := goleak.IgnoreCurrent() // the broker's goroutines
	c, err := kafka.New(testContext(t, 30*time.Second), kafka.Config{Brokers: []string{broker.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	stream := uniqueStream(t)
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
	goleak.VerifyNone(t, before)
}
