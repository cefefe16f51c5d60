package adaptertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSQueueGroupRate is WorkPullingRate's workload on a core NATS queue
// group: workers subscribers of one subject in one queue group, each
// spending cost on every message. Core NATS has no acks: a message a
// subscriber dies with is lost (at most once). It returns messages per
// second from the first publish until all n were handled.
func NATSQueueGroupRate(tb testing.TB, url string, workers, n int, cost time.Duration, payload []byte) float64 {
	tb.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	subject := fmt.Sprintf("bridge.bench.queue.%d.%d", startedAt, streamSeq.Add(1))
	var handled atomic.Int64
	done := make(chan struct{})
	for range workers {
		sub, err := nc.QueueSubscribe(subject, "workers", func(*natsgo.Msg) {
			time.Sleep(cost)
			if handled.Add(1) == int64(n) {
				close(done)
			}
		})
		if err != nil {
			tb.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	for range n {
		if err := nc.Publish(subject, payload); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		tb.Fatal("the queue group did not handle every message")
	}
	return float64(n) / time.Since(start).Seconds()
}

// JetStreamSharedRate is the workload on one JetStream durable pull
// consumer shared by workers subscribers, acks explicit, at most window
// unacked per worker; messages published with acks. It returns messages
// per second from the first publish until all n are acked.
func JetStreamSharedRate(tb testing.TB, url string, workers, n, window int, cost time.Duration, payload []byte) float64 {
	tb.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := fmt.Sprintf("bridge_bench_shared_%d_%d", startedAt, streamSeq.Add(1))
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}})
	if err != nil {
		tb.Fatal(err)
	}
	defer js.DeleteStream(context.Background(), name)
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: window * workers})
	if err != nil {
		tb.Fatal(err)
	}
	var acked atomic.Int64
	done := make(chan struct{})
	for range workers {
		cc, err := cons.Consume(func(m jetstream.Msg) {
			time.Sleep(cost)
			m.Ack()
			if acked.Add(1) == int64(n) {
				close(done)
			}
		}, jetstream.PullMaxMessages(window))
		if err != nil {
			tb.Fatal(err)
		}
		defer cc.Stop()
	}
	start := time.Now()
	for range n {
		if _, err := js.PublishAsync(name, payload); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	select {
	case <-done:
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	return float64(n) / time.Since(start).Seconds()
}
