package amqp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// BenchmarkWorkPulling: b.N messages of 128 bytes shared by 1, 2 and 4
// workers, each spending 1 ms on every message, three ways in the same run:
// work pulling over RabbitMQ, work pulling over loopback tcp, and
// RabbitMQ's own competing consumers (one queue, manual acks, a prefetch
// equal to the workers' window). Each reports msgs/s, and the tcp row its
// ratio to RabbitMQ's competing consumers.
func BenchmarkWorkPulling(b *testing.B) {
	payload := adaptertest.Payload(0, 128)
	const window = 50
	for _, workers := range []int{1, 2, 4} {
		var competing float64
		b.Run(fmt.Sprintf("workers=%d/rabbitmq-competing", workers), func(b *testing.B) {
			competing = adaptertest.RabbitMQCompetingRate(b, requireBroker(b), workers, b.N, window, time.Millisecond, payload)
			b.ReportMetric(competing, "msgs/s")
		})
		b.Run(fmt.Sprintf("workers=%d/wp-amqp", workers), func(b *testing.B) {
			c := newCarrier(b, amqp.Config{})
			b.ReportMetric(adaptertest.WorkPullingRate(b, c, workers, b.N, window, time.Millisecond, payload), "msgs/s")
		})
		b.Run(fmt.Sprintf("workers=%d/wp-tcp", workers), func(b *testing.B) {
			c, err := tcp.New("127.0.0.1:0", delivery.ProducerEnd, tcp.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			rate := adaptertest.WorkPullingRate(b, c, workers, b.N, window, time.Millisecond, payload)
			b.ReportMetric(rate, "msgs/s")
			if competing > 0 {
				b.ReportMetric(rate/competing, "x-rabbitmq")
			}
		})
	}
}
