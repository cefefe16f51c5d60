package kafka_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
)

// BenchmarkWorkPulling: b.N messages of 128 bytes shared by 1, 2 and 4
// workers, each spending 1 ms on every message, by work pulling over the
// test Kafka (windows of 50). (A consumer group as the baseline is not
// measured yet.)
func BenchmarkWorkPulling(b *testing.B) {
	brokers := adaptertest.Kafka(b)
	payload := adaptertest.Payload(0, 128)
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d/wp-kafka", workers), func(b *testing.B) {
			c := adaptertest.DeleteStreamsAtCleanup(b, newCarrier(b, kafka.Config{Brokers: brokers}))
			b.ReportMetric(adaptertest.WorkPullingRate(b, c, workers, b.N, 50, time.Millisecond, payload), "msgs/s")
		})
	}
}
