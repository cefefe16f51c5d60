package kafka_test

import (
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
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

func TestConformance(t *testing.T) {
	broker := startBroker(t)
	c := newCarrier(t, kafka.Config{Brokers: []string{broker.addr()}})
	adaptertest.Run(t, conformanceSpec("kafka on kfake", c))
}
