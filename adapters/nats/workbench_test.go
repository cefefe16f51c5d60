package nats_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
)

// BenchmarkWorkPulling: b.N messages of 128 bytes shared by 1, 2 and 4
// workers, each spending 1 ms on every message, on the machine's NATS, in
// the same run: a core NATS queue group (at most once), one JetStream
// consumer shared by pull subscribers (acks, at most 50 unacked each), and
// work pulling over core NATS and over JetStream (windows of 50).
func BenchmarkWorkPulling(b *testing.B) {
	url := machineNATS(b)
	payload := adaptertest.Payload(0, 128)
	const window = 50
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d/queue-group", workers), func(b *testing.B) {
			b.ReportMetric(adaptertest.NATSQueueGroupRate(b, url, workers, b.N, time.Millisecond, payload), "msgs/s")
		})
		b.Run(fmt.Sprintf("workers=%d/jetstream-shared", workers), func(b *testing.B) {
			b.ReportMetric(adaptertest.JetStreamSharedRate(b, url, workers, b.N, window, time.Millisecond, payload), "msgs/s")
		})
		for _, mode := range []nats.Mode{nats.ModeCore, nats.ModeJetStream} {
			b.Run(fmt.Sprintf("workers=%d/wp-%s", workers, mode), func(b *testing.B) {
				c := newCarrier(b, testConfig(url, mode))
				b.ReportMetric(adaptertest.WorkPullingRate(b, c, workers, b.N, window, time.Millisecond, payload), "msgs/s")
			})
		}
	}
}
