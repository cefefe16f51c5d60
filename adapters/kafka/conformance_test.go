package kafka_test

import (
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
)

// conformanceSpec describes c to the conformance suite. Cut closes the
// network connections of every link of the stream, as a network failure
// would.
func conformanceSpec(name string, c *kafka.Carrier) adaptertest.Spec {
	return adaptertest.Spec{
		Name:         name,
		Carrier:      c,
		Cut:          func(_ testing.TB, stream string) { kafka.CutStream(c, stream) },
		Queue:        true,
		Release:      true,
		MaxFrameSize: kafka.DefaultMaxMessageBytes - kafka.RecordOverhead,
	}
}

// TestConformance runs the conformance suite on the test Kafka: Apache Kafka
// under `make test` (.ci/kafka), kfake in a plain `go test` with none
// running (adaptertest.KafkaOrKfake).
func TestConformance(t *testing.T) {
	c, _, name := testKafka(t, kafka.Config{})
	spec := conformanceSpec(name, c)
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
