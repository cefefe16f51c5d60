package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// The delivery benchmarks stream b.N messages end to end over the memory
// pipe and report, from the same run, the rate of reliable delivery
// (msgs/s), of the raw pipe carrying one message per frame with no protocol
// (raw-msgs/s), and their ratio. ns/op is the reliable path's.

func BenchmarkDelivery128B(b *testing.B) { benchDelivery(b, 128) }

func BenchmarkDelivery64KiB(b *testing.B) { benchDelivery(b, 64<<10) }

func benchDelivery(b *testing.B, size int) {
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()

	b.StopTimer()
	raw := rawPipeRate(b, b.N, payload)
	b.StartTimer()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "bench"})
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, delivery.ConsumerSettings{})
	waitProducer := run(b, ctx, producer)
	waitConsumer := run(b, ctx, consumer)

	start := time.Now()
	go func() {
		for range b.N {
			if _, err := producer.Send(ctx, payload); err != nil {
				return
			}
		}
	}()
	for range b.N {
		d, err := consumer.Receive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		d.Confirm()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reliable := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(reliable, "msgs/s")
	b.ReportMetric(raw, "raw-msgs/s")
	b.ReportMetric(reliable/raw, "ratio")
	producer.Close()
	consumer.Close()
	waitProducer()
	waitConsumer()
}

// rawPipeRate sends n messages over a fresh pipe, one per frame, and returns
// messages per second.
func rawPipeRate(b *testing.B, n int, payload []byte) float64 {
	ctx := context.Background()
	pipe, _ := memory.NewPipe(memory.Options{})
	out, in := pipe.Producer(), pipe.Consumer()
	defer pipe.Close()
	start := time.Now()
	go func() {
		for range n {
			if err := out.Send(ctx, payload); err != nil {
				return
			}
		}
	}()
	for range n {
		if _, err := in.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
