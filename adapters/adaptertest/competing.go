package adaptertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// RabbitMQCompetingRate is WorkPullingRate's workload on RabbitMQ's own
// competing consumers, for the comparison: workers consumers on one durable
// queue, manual acks, a prefetch of window each, persistent messages
// published with confirms; each consumer spends cost on every message
// before it acks it. It returns messages per second from the first publish
// until all n are acked.
func RabbitMQCompetingRate(tb testing.TB, url string, workers, n, window int, cost time.Duration, payload []byte) float64 {
	tb.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	pub, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	queue := fmt.Sprintf("bridge-bench-competing-%d-%d", startedAt, streamSeq.Add(1))
	if _, err := pub.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		tb.Fatal(err)
	}
	defer DeleteQueues(url, queue)
	if err := pub.Confirm(false); err != nil {
		tb.Fatal(err)
	}
	confirms := pub.NotifyPublish(make(chan amqp091.Confirmation, n))
	var acked atomic.Int64
	done := make(chan struct{})
	for range workers {
		ch, err := conn.Channel()
		if err != nil {
			tb.Fatal(err)
		}
		if err := ch.Qos(window, 0, false); err != nil {
			tb.Fatal(err)
		}
		deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			tb.Fatal(err)
		}
		go func() {
			for d := range deliveries {
				time.Sleep(cost)
				d.Ack(false)
				if acked.Add(1) == int64(n) {
					close(done)
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	for range n {
		if err := pub.PublishWithContext(ctx, "", queue, false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: payload}); err != nil {
			tb.Fatal(err)
		}
	}
	for range n {
		if c := <-confirms; !c.Ack {
			tb.Fatal("RabbitMQ refused a publish")
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		tb.Fatal(ctx.Err())
	}
	return float64(n) / time.Since(start).Seconds()
}
