package tcp_test

import (
	"context"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// The benchmarks stream b.N messages over loopback TCP and report, from the
// same run, reliable delivery (msgs/s), the raw carrier with one message
// per frame and no protocol (raw-msgs/s), and their ratio.

func BenchmarkTCP128B(b *testing.B) { benchTCP(b, 128) }

func BenchmarkTCP64KiB(b *testing.B) { benchTCP(b, 64<<10) }

// pair opens a fresh stream's two ends on a new listener.
func pair(b *testing.B) (producer, consumer *tcp.Link, closeAll func()) {
	ln, err := tcp.Listen(context.Background(), "127.0.0.1:0", tcp.Config{})
	if err != nil {
		b.Fatal(err)
	}
	consumer, _ = ln.Link("bench", delivery.ConsumerEnd)
	producer, _ = tcp.Dial(ln.Addr().String(), "bench", delivery.ProducerEnd, tcp.Config{})
	return producer, consumer, func() { producer.Close(); ln.Close() }
}

func benchTCP(b *testing.B, size int) {
	ctx := context.Background()
	payload := adaptertest.Payload(0, size)
	b.SetBytes(int64(size))

	b.StopTimer()
	out, in, closeRaw := pair(b)
	start := time.Now()
	go func() {
		for range b.N {
			if out.Send(ctx, payload) != nil {
				return
			}
		}
	}()
	for range b.N {
		if _, err := in.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
	raw := float64(b.N) / time.Since(start).Seconds()
	closeRaw()

	producerLink, consumerLink, closeReliable := pair(b)
	defer closeReliable()
	producer, _ := delivery.NewProducerController[[]byte](producerLink, nil, delivery.ProducerSettings{ProducerID: "bench"})
	consumer, _ := delivery.NewConsumerController[[]byte](consumerLink, nil, delivery.ConsumerSettings{})
	go producer.Run(ctx)
	go consumer.Run(ctx)
	defer producer.Close()
	defer consumer.Close()
	b.StartTimer()
	start = time.Now()
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
	reliable := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(reliable, "msgs/s")
	b.ReportMetric(raw, "raw-msgs/s")
	b.ReportMetric(reliable/raw, "ratio")
}
