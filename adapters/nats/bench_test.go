package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// The benchmarks stream b.N messages through an embedded NATS server and
// report, from the same run on the same server: reliable delivery over the
// carrier (msgs/s), the raw client with no protocol (raw-msgs/s), and their
// ratio. Raw core NATS is nats.go publish and subscribe, one message per
// publish; raw JetStream is asynchronous publish with acks and a pull
// consumer acking each message, the client's strongest settings. ns/op is
// the reliable path's.

func BenchmarkCore128B(b *testing.B)       { benchNATS(b, nats.ModeCore, 128) }
func BenchmarkCore64KiB(b *testing.B)      { benchNATS(b, nats.ModeCore, 64<<10) }
func BenchmarkJetStream128B(b *testing.B)  { benchNATS(b, nats.ModeJetStream, 128) }
func BenchmarkJetStream64KiB(b *testing.B) { benchNATS(b, nats.ModeJetStream, 64<<10) }

var benchSeq atomic.Uint64

func benchNATS(b *testing.B, mode nats.Mode, size int) {
	payload := adaptertest.Payload(0, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	// The server's errors go to stderr: it says why, should it fail.
	serverLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv := startServer(b, nats.ServerConfig{Logger: serverLog})
	stream := fmt.Sprintf("bench%d", benchSeq.Add(1))

	b.StopTimer()
	var raw float64
	if mode == nats.ModeCore {
		raw = rawCoreRate(b, srv.URL(), b.N, payload)
	} else {
		raw = rawJetStreamRate(b, srv.URL(), b.N, payload)
	}

	c := newCarrier(b, nats.Config{URL: srv.URL(), Mode: mode})
	s := adaptertest.NewBenchStream(b, openLink(b, c, stream, delivery.ProducerEnd), openLink(b, c, stream, delivery.ConsumerEnd),
		delivery.ProducerSettings{}, delivery.ConsumerSettings{})
	defer s.Close()
	b.StartTimer()
	reliable := s.Rate(b.N, payload)
	b.StopTimer()
	adaptertest.ReportRates(b, reliable, raw)
}

// rawCoreRate publishes n messages with nats.go to a subscriber on another
// connection and returns messages per second, first publish to last
// receipt.
func rawCoreRate(b *testing.B, url string, n int, payload []byte) float64 {
	pub, sub := rawConn(b, url), rawConn(b, url)
	done := make(chan struct{})
	var got atomic.Int64
	s, err := sub.Subscribe("raw.core", func(*natsgo.Msg) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SetPendingLimits(-1, -1); err != nil { // take everything: nothing dropped
		b.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range n {
		if err := pub.Publish("raw.core", payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("raw core NATS: %d of %d messages arrived", got.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}

// rawJetStreamRate publishes n messages asynchronously to a JetStream
// stream, every publish acknowledged, while a pull consumer on another
// connection acks each one; it returns messages per second.
func rawJetStreamRate(b *testing.B, url string, n int, payload []byte) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pubConn, subConn := rawConn(b, url), rawConn(b, url)
	pubJS, err := jetstream.New(pubConn)
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("RAW%d", benchSeq.Add(1))
	if _, err := pubJS.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		b.Fatal(err)
	}
	defer pubJS.DeleteStream(context.Background(), name)
	subJS, err := jetstream.New(subConn)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := subJS.CreateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var got atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			b.Error(err)
		}
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxBytes(nats.DefaultPullMaxBytes))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()

	start := time.Now()
	for range n {
		if _, err := pubJS.PublishAsync(name, payload, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-pubJS.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal("raw JetStream: publishes not acknowledged")
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("raw JetStream: %d of %d messages arrived", got.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}

func rawConn(b *testing.B, url string) *natsgo.Conn {
	nc, err := natsgo.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}
