package adaptertest

import (
	"context"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// BenchStream is a producer and a consumer controller running over two
// links, for benchmarks that compare reliable delivery with a raw carrier.
type BenchStream struct {
	tb       testing.TB
	ctx      context.Context
	cancel   context.CancelFunc
	producer *delivery.ProducerController[[]byte]
	consumer *delivery.ConsumerController[[]byte]
	ran      chan error
}

// NewBenchStream starts the two controllers (ProducerID defaults to
// "bench"). Close stops them, which closes the links.
func NewBenchStream(tb testing.TB, producerLink, consumerLink delivery.Link, ps delivery.ProducerSettings, cs delivery.ConsumerSettings) *BenchStream {
	tb.Helper()
	if ps.ProducerID == "" {
		ps.ProducerID = "bench"
	}
	producer, err := delivery.NewProducerController[[]byte](producerLink, nil, ps)
	if err != nil {
		tb.Fatal(err)
	}
	consumer, err := delivery.NewConsumerController[[]byte](consumerLink, nil, cs)
	if err != nil {
		tb.Fatal(err)
	}
	s := &BenchStream{tb: tb, producer: producer, consumer: consumer, ran: make(chan error, 2)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.ran <- producer.Run(s.ctx) }()
	go func() { s.ran <- consumer.Run(s.ctx) }()
	return s
}

// Rate sends n copies of payload; the consumer confirms each as it receives
// it. It returns messages per second, from the first send to the last
// receipt.
func (s *BenchStream) Rate(n int, payload []byte) float64 {
	s.tb.Helper()
	return s.RateWithHeaders(n, payload, nil)
}

// RateWithHeaders is Rate with headers h on every message (through
// SendMessage; none, through Send).
func (s *BenchStream) RateWithHeaders(n int, payload []byte, h delivery.Headers) float64 {
	s.tb.Helper()
	start := time.Now()
	go s.send(n, payload, h)
	for range n {
		d, err := s.consumer.Receive(s.ctx)
		if err != nil {
			s.tb.Fatal(err)
		}
		d.Confirm()
	}
	return float64(n) / time.Since(start).Seconds()
}

// BatchRate is Rate with the consumer taking what waits, up to limit
// messages at a time (ReceiveBatch), and confirming each batch by its last
// message, as the service's sinks do (Consume).
func (s *BenchStream) BatchRate(n int, payload []byte, limit int) float64 {
	s.tb.Helper()
	start := time.Now()
	go s.send(n, payload, nil)
	var batch []delivery.Delivery[[]byte]
	for got := 0; got < n; got += len(batch) {
		var err error
		if batch, err = s.consumer.ReceiveBatch(s.ctx, batch[:0], limit); err != nil {
			s.tb.Fatal(err)
		}
		batch[len(batch)-1].Confirm()
	}
	return float64(n) / time.Since(start).Seconds()
}

// send sends n copies of payload with headers h (through SendMessage;
// none, through Send), until one fails (the stream is closing).
func (s *BenchStream) send(n int, payload []byte, h delivery.Headers) {
	for range n {
		var err error
		if h == nil {
			_, err = s.producer.Send(s.ctx, payload)
		} else {
			_, _, err = s.producer.SendMessage(s.ctx, delivery.Outgoing[[]byte]{Message: payload, Headers: h})
		}
		if err != nil {
			return
		}
	}
}

// Close stops the controllers and waits for them.
func (s *BenchStream) Close() {
	s.producer.Close()
	s.consumer.Close()
	s.cancel()
	<-s.ran
	<-s.ran
}

// LinkRate sends n copies of payload over out, a frame each and no
// protocol, receives them from in (releasing each), and returns messages
// per second: the raw rate of a carrier's links.
func LinkRate(tb testing.TB, out, in delivery.Link, n int, payload []byte) float64 {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	go func() {
		for range n {
			if out.Send(ctx, payload) != nil {
				return
			}
		}
	}()
	for range n {
		f, err := in.Receive(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if f.Release != nil {
			f.Release()
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// ReportRates reports reliable delivery's rate (msgs/s), the raw carrier's
// from the same run (raw-msgs/s), and their ratio.
func ReportRates(b *testing.B, reliable, raw float64) {
	b.ReportMetric(reliable, "msgs/s")
	b.ReportMetric(raw, "raw-msgs/s")
	b.ReportMetric(reliable/raw, "ratio")
}
