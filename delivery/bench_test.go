package delivery_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// The delivery benchmarks stream b.N messages end to end over the memory
// pipe and report, from the same run, the rate of reliable delivery
// (msgs/s), of the raw pipe carrying one message per frame with no protocol
// (raw-msgs/s), and their ratio. ns/op is the reliable path's.

// benchWindow sets the consumer's window in the delivery benchmarks (0:
// DefaultWindow), as in `go test -bench Delivery -args -window 65536`:
// over the memory pipe the window of 16384 binds at 128 B, where a round
// trip of the window takes longer than sending half of it.
var benchWindow = flag.Int("window", 0, "the consumer's window in the delivery benchmarks (0: DefaultWindow)")

func benchConsumerSettings() delivery.ConsumerSettings {
	return delivery.ConsumerSettings{Window: *benchWindow}
}

func BenchmarkDelivery128B(b *testing.B) { benchDelivery(b, 128) }

func BenchmarkDelivery64KiB(b *testing.B) { benchDelivery(b, 64<<10) }

// BenchmarkDelivery128BBatched is BenchmarkDelivery128B with the consumer
// taking up to 4096 messages at a time and confirming each batch by its
// last, as the service's sinks consume (ConsumerController.Consume).
func BenchmarkDelivery128BBatched(b *testing.B) {
	benchMemoryPipe(b, 128, func(s *adaptertest.BenchStream, payload []byte) float64 {
		return s.BatchRate(b.N, payload, 4096)
	})
}

// BenchmarkDelivery128BHeaders is BenchmarkDelivery128B with the bench's
// three headers of 32 bytes on every message: its ratio against
// BenchmarkDelivery128B's is what headers cost.
func BenchmarkDelivery128BHeaders(b *testing.B) { benchDelivery(b, 128, benchHeaders()...) }

// benchHeaders are bridge bench's: three of 32 bytes, name and value.
func benchHeaders() delivery.Headers {
	var h delivery.Headers
	for i := range 3 {
		name := fmt.Sprintf("bridge-meta-h%d", i)
		h = append(h, delivery.Header{Name: name, Value: strings.Repeat("v", 32-len(name))})
	}
	return h
}

func benchDelivery(b *testing.B, size int, headers ...delivery.Header) {
	benchMemoryPipe(b, size, func(s *adaptertest.BenchStream, payload []byte) float64 {
		return s.RateWithHeaders(b.N, payload, headers)
	})
}

// benchMemoryPipe measures the raw memory pipe with b.N messages of size
// bytes, then reliable delivery over another by rate, and reports both.
func benchMemoryPipe(b *testing.B, size int, rate func(s *adaptertest.BenchStream, payload []byte) float64) {
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.StopTimer()
	rawPipe, _ := memory.NewPipe(memory.Options{})
	raw := adaptertest.LinkRate(b, rawPipe.Producer(), rawPipe.Consumer(), b.N, payload)
	rawPipe.Close()

	pipe, _ := memory.NewPipe(memory.Options{})
	s := adaptertest.NewBenchStream(b, pipe.Producer(), pipe.Consumer(), delivery.ProducerSettings{}, benchConsumerSettings())
	defer s.Close()
	b.StartTimer()
	reliable := rate(s, payload)
	b.StopTimer()
	adaptertest.ReportRates(b, reliable, raw)
}
