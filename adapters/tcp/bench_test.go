package tcp_test

import (
	"context"
	"testing"

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
	producer, _ = tcp.Dial(context.Background(), ln.Addr().String(), "bench", delivery.ProducerEnd, tcp.Config{})
	return producer, consumer, func() { producer.Close(); ln.Close() }
}

func benchTCP(b *testing.B, size int) {
	payload := adaptertest.Payload(0, size)
	b.SetBytes(int64(size))
	b.StopTimer()
	out, in, closeRaw := pair(b)
	raw := adaptertest.LinkRate(b, out, in, b.N, payload)
	closeRaw()

	producerLink, consumerLink, closeReliable := pair(b)
	defer closeReliable()
	s := adaptertest.NewBenchStream(b, producerLink, consumerLink, delivery.ProducerSettings{}, delivery.ConsumerSettings{})
	defer s.Close()
	b.StartTimer()
	reliable := s.Rate(b.N, payload)
	b.StopTimer()
	adaptertest.ReportRates(b, reliable, raw)
}
