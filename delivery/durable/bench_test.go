package durable_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

// BenchmarkDurable128B streams b.N messages of 128 bytes over the memory
// pipe twice in the same run, without and with the durable queue (every
// message stored and synced before it is sent, confirmations stored as they
// come), and reports the durable rate (msgs/s), the in-memory rate
// (memory-msgs/s) and their ratio.
func BenchmarkDurable128B(b *testing.B) {
	payload := make([]byte, 128)
	b.SetBytes(128)
	b.StopTimer()
	inMemory := streamRate(b, b.N, payload, nil)
	q, err := durable.Open(filepath.Join(b.TempDir(), "bench.db"), durable.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	rate := streamRate(b, b.N, payload, q)
	b.StopTimer()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(inMemory, "memory-msgs/s")
	b.ReportMetric(rate/inMemory, "ratio")
}

func streamRate(b *testing.B, n int, payload []byte, q delivery.DurableQueue) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, err := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "bench", DurableQueue: q})
	if err != nil {
		b.Fatal(err)
	}
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, delivery.ConsumerSettings{})
	go producer.Run(ctx)
	go consumer.Run(ctx)
	defer producer.Close()
	defer consumer.Close()
	start := time.Now()
	go func() {
		for range n {
			if _, err := producer.Send(ctx, payload); err != nil {
				return
			}
		}
	}()
	for range n {
		d, err := consumer.Receive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		d.Confirm()
	}
	return float64(n) / time.Since(start).Seconds()
}
