package kafka_test

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// conformanceSpec describes c, on brokers, to the conformance suite. Cut
// closes the network connections of every link of the stream, as a network
// failure would. A stranger writes with a kafka-go Writer of its own to the
// stream's topics (the carrier's default names).
func conformanceSpec(t *testing.T, name string, c *kafka.Carrier, brokers []string) adaptertest.Spec {
	stranger := &kafkago.Writer{Addr: kafkago.TCP(brokers...), RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	t.Cleanup(func() { stranger.Close() })
	return adaptertest.Spec{
		Name:    name,
		Carrier: c,
		Cut:     func(_ testing.TB, stream string) { kafka.CutStream(c, stream) },
		Inject: func(t testing.TB, stream string, to delivery.End, frame []byte) {
			topic := "bridge." + stream + ".data"
			if to == delivery.ProducerEnd {
				topic = "bridge." + stream + ".control"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := stranger.WriteMessages(ctx, kafkago.Message{Topic: topic, Value: frame}); err != nil {
				t.Errorf("stranger: write to %s: %v", topic, err)
			}
		},
		Queue:        true,
		Release:      true,
		MaxFrameSize: kafka.DefaultMaxMessageBytes - kafka.RecordOverhead,
	}
}

// TestConformance runs the conformance suite on the test Kafka: Apache Kafka
// under `make test` (.ci/kafka), kfake in a plain `go test` with none
// running (adaptertest.KafkaOrKfake).
func TestConformance(t *testing.T) {
	c, brokers, name := testKafka(t, kafka.Config{})
	spec := conformanceSpec(t, name, c, brokers)
	spec.Carrier = adaptertest.DeleteStreamsAtCleanup(t, c) // a real broker is shared and keeps them

	// The topics' limit on this broker decides the frame limit the suite
	// checks: ask a link.
	ctx := testContext(t, time.Minute)
	l, err := c.Link(ctx, newStream(t, c), delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	spec.MaxFrameSize = l.MaxFrameSize()
	l.Close()
	adaptertest.Run(t, spec)
}
