package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	amqp091 "github.com/rabbitmq/amqp091-go"

	amqpcarrier "github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// amqpCompeting is RabbitMQ's competing consumers: workers consumers on
// one durable queue, each on its connection with manual acks and a
// prefetch of the window; persistent publishes with confirms. A killed
// consumer's connection closes: RabbitMQ requeues what it had not acked.
// RabbitMQ hands each consumer its messages in queue order, and a requeued
// one comes back out of it.
func amqpCompeting(dial func(string) (*amqp091.Connection, error), prefix string, window int, log *slog.Logger) *workMechanism {
	return &workMechanism{
		mode:     report.Competing,
		client:   fmt.Sprintf("amqp091-go: consumers on one durable queue, manual acks, prefetch %d each; persistent publishes, publisher confirms (at most %d pending)", window, amqpcarrier.DefaultMaxPendingConfirms),
		ordering: report.PerWorker + ", but for requeued messages",
		open: func(ctx context.Context, stream string, workers int, tally *workTally) (*workPipe, error) {
			return amqpCompetingPipe(dial, prefix+stream+".competing", workers, window, tally, log)
		},
	}
}

func amqpCompetingPipe(dial func(string) (*amqp091.Connection, error), queue string, workers, window int, tally *workTally, log *slog.Logger) (*workPipe, error) {
	pubConn, err := dial("bridge bench competing publisher")
	if err != nil {
		return nil, err
	}
	p := &workPipe{failed: make(chan error, 1)}
	var conns []*amqp091.Connection
	var done []chan struct{}
	p.close = func() {
		for _, c := range conns {
			c.Close()
		}
		for _, d := range done {
			<-d
		}
		if err := deleteQueues(pubConn, queue); err != nil {
			log.Warn("competing amqp: deleting the bench's queue", "err", err)
		}
		pubConn.Close()
	}
	fail := func(err error) (*workPipe, error) {
		p.close()
		return nil, fmt.Errorf("competing amqp: %w", err)
	}
	pub, err := pubConn.Channel()
	if err != nil {
		return fail(err)
	}
	if _, err := pub.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return fail(err)
	}
	if err := pub.Confirm(false); err != nil {
		return fail(err)
	}
	for k := range workers {
		conn, err := dial(fmt.Sprint("bridge bench competing consumer ", k))
		if err != nil {
			return fail(err)
		}
		conns = append(conns, conn)
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Qos(window, 0, false)
		}
		var deliveries <-chan amqp091.Delivery
		if err == nil {
			deliveries, err = ch.Consume(queue, "", false, false, false, false, nil)
		}
		if err != nil {
			return fail(err)
		}
		d := make(chan struct{})
		done = append(done, d)
		go func() {
			defer close(d)
			for m := range deliveries {
				if !tally.work(k, k, m.Body) {
					return // killed: its connection closes, unacked
				}
				if err := m.Ack(false); err != nil {
					if !tally.killed[k].Load() {
						p.fail(fmt.Errorf("competing amqp ack: %w", err))
					}
					return
				}
			}
		}()
	}
	pending := make([]*amqp091.DeferredConfirmation, 0, amqpcarrier.DefaultMaxPendingConfirms)
	confirmed := func(ctx context.Context, c *amqp091.DeferredConfirmation) error {
		ok, err := c.WaitContext(ctx)
		if err == nil && !ok {
			err = errNacked
		}
		return err
	}
	p.send = func(ctx context.Context, msg []byte) error {
		if len(pending) == cap(pending) {
			if err := confirmed(ctx, pending[0]); err != nil {
				return err
			}
			pending = append(pending[:0], pending[1:]...)
		}
		c, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: msg})
		if err != nil {
			return err
		}
		pending = append(pending, c)
		return nil
	}
	p.flush = func(ctx context.Context) error {
		var errs []error
		for _, c := range pending {
			errs = append(errs, confirmed(ctx, c))
		}
		pending = pending[:0]
		return errors.Join(errs...)
	}
	p.kill = func() { conns[0].Close() }
	return p, nil
}
