package tcp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// BenchmarkWorkPulling hands b.N messages of 128 bytes to 1, 2 and 4
// workers over loopback TCP (the producer listens), each worker spending 1
// ms on every message, and reports msgs/s and, against one worker's rate
// in the same run, the scaling (ideal: the number of workers).
func BenchmarkWorkPulling(b *testing.B) {
	payload := adaptertest.Payload(0, 128)
	var one float64
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprint("workers=", workers), func(b *testing.B) {
			c, err := tcp.New("127.0.0.1:0", delivery.ProducerEnd, testConfig)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			rate := adaptertest.WorkPullingRate(b, c, workers, b.N, 50, time.Millisecond, payload)
			b.ReportMetric(rate, "msgs/s")
			if workers == 1 {
				one = rate
			} else if one > 0 {
				b.ReportMetric(rate/one, "x-one-worker")
			}
		})
	}
}
