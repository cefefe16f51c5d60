package amqp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// The benchmarks stream b.N messages through the broker and report, from
// the same run, the rate of reliable delivery over the carrier (msgs/s),
// of raw amqp091-go with the carrier's own settings and no protocol
// (raw-msgs/s: one message per persistent publish, publisher confirms
// with the same bound on pending confirms, manual acks of each delivery,
// the same prefetch, separate connections), and their ratio. ns/op is the
// reliable path's.

func BenchmarkAMQP128B(b *testing.B) { benchAMQP(b, 128) }

func BenchmarkAMQP64KiB(b *testing.B) { benchAMQP(b, 64<<10) }

func benchAMQP(b *testing.B, size int) {
	requireBroker(b)
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.StopTimer()
	raw := rawAMQPRate(b, b.N, payload)

	stream := testName("bench")
	c := newCarrier(b, amqp.Config{Logger: testLogger(b)}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	producerLink, err := c.Link(ctx, stream, delivery.ProducerEnd)
	if err != nil {
		b.Fatal(err)
	}
	consumerLink, err := c.Link(ctx, stream, delivery.ConsumerEnd)
	if err != nil {
		b.Fatal(err)
	}
	s := adaptertest.NewBenchStream(b, producerLink, consumerLink, delivery.ProducerSettings{}, delivery.ConsumerSettings{})
	defer s.Close()
	b.StartTimer()
	reliable := s.Rate(b.N, payload)
	b.StopTimer()
	adaptertest.ReportRates(b, reliable, raw)
}

// rawAMQPRate streams n messages through a fresh queue with amqp091-go
// alone and returns messages per second.
func rawAMQPRate(b *testing.B, n int, payload []byte) float64 {
	b.Helper()
	queue := "bridge-test." + testName("bench-raw")
	b.Cleanup(func() { deleteQueues(b, queue) })
	dial := func(role string) *amqp091.Connection {
		conn, err := amqp091.DialConfig(brokerURL(), amqp091.Config{Properties: amqp091.Table{"connection_name": "bridge-test-bench-raw " + role}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		return conn
	}
	pubConn, subConn := dial("publish"), dial("consume")
	pub, err := pubConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pub.QueueDeclare(queue, true, false, false, false, amqp091.Table{"x-single-active-consumer": true}); err != nil {
		b.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		b.Fatal(err)
	}
	sub, err := subConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.Qos(amqp.DefaultPrefetch, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := sub.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}

	ctx := context.Background()
	published := make(chan error, 1)
	start := time.Now()
	go func() {
		pending := make([]*amqp091.DeferredConfirmation, 0, amqp.DefaultMaxPendingConfirms)
		for range n {
			if len(pending) == amqp.DefaultMaxPendingConfirms {
				if !pending[0].Wait() {
					published <- errNacked
					return
				}
				pending = pending[1:]
			}
			c, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
				amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: payload})
			if err != nil {
				published <- err
				return
			}
			pending = append(pending, c)
		}
		for _, c := range pending {
			if !c.Wait() {
				published <- errNacked
				return
			}
		}
		published <- nil
	}()
	for range n {
		d, ok := <-deliveries
		if !ok {
			b.Fatal("raw consumer: deliveries closed")
		}
		if err := d.Ack(false); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	if err := <-published; err != nil {
		b.Fatal(err)
	}
	return rate
}

var errNacked = errors.New("raw publisher: negative confirm")
