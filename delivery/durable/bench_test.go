package durable_test

import (
	"path/filepath"
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
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
	inMemory := streamRate(b, payload, nil)
	q, err := durable.Open(filepath.Join(b.TempDir(), "bench.db"), durable.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	rate := streamRate(b, payload, q)
	b.StopTimer()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(inMemory, "memory-msgs/s")
	b.ReportMetric(rate/inMemory, "ratio")
}

func streamRate(b *testing.B, payload []byte, q delivery.DurableQueue) float64 {
	pipe, _ := memory.NewPipe(memory.Options{})
	s := adaptertest.NewBenchStream(b, pipe.Producer(), pipe.Consumer(), delivery.ProducerSettings{DurableQueue: q}, delivery.ConsumerSettings{})
	defer s.Close()
	return s.Rate(b.N, payload)
}
