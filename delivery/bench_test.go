package delivery_test

import (
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
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
	rawPipe, _ := memory.NewPipe(memory.Options{})
	raw := adaptertest.LinkRate(b, rawPipe.Producer(), rawPipe.Consumer(), b.N, payload)
	rawPipe.Close()

	pipe, _ := memory.NewPipe(memory.Options{})
	s := adaptertest.NewBenchStream(b, pipe.Producer(), pipe.Consumer(), delivery.ProducerSettings{}, delivery.ConsumerSettings{})
	defer s.Close()
	b.StartTimer()
	reliable := s.Rate(b.N, payload)
	b.StopTimer()
	adaptertest.ReportRates(b, reliable, raw)
}
