package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	amqpcarrier "github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/bridge"
)

// amqpTarget is RabbitMQ at BRIDGE_AMQP_URL.
func amqpTarget(ctx context.Context, cfg bridge.Config, _ Config, log *slog.Logger) (*target, error) {
	acfg, err := cfg.AMQPConfig(log) // the carrier's URL and TLS, for the raw clients
	if err != nil {
		return nil, err
	}
	dial := func(name string) (*amqp091.Connection, error) {
		conn, err := amqp091.DialConfig(acfg.URL, amqp091.Config{
			TLSClientConfig: acfg.TLS,
			Properties:      amqp091.Table{"connection_name": name},
		})
		if err != nil {
			return nil, fmt.Errorf("BRIDGE_AMQP_URL: %w", err)
		}
		return conn, nil
	}
	probe, err := dial("bridge bench")
	if err != nil {
		return nil, err
	}
	probe.Close() // it was for the broker's name and version
	t := &target{
		name:   "amqp",
		broker: fmt.Sprintf("%v %v", probe.Properties["product"], probe.Properties["version"]),
		client: fmt.Sprintf("amqp091-go: persistent mandatory publishes, publisher confirms (at most %d pending), a consumer acking each message, prefetch the window, separate connections", amqpcarrier.DefaultMaxPendingConfirms),
		cfg:    cfg,
	}
	if err := t.openCarrier(ctx, log); err != nil {
		t.close()
		return nil, err
	}
	prefix, prefetch := acfg.QueuePrefix, acfg.Prefetch // as the carrier's
	t.raw = func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error) {
		return rawAMQPPipe(dial, prefix+stream+".raw", prefetch, log, deliver)
	}
	t.competing = amqpCompeting(dial, prefix, cfg.Window, log)
	return t, nil
}

// deleteQueues deletes queues, whether or not they hold messages.
func deleteQueues(conn *amqp091.Connection, queues ...string) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("deleting queue %s: %w", q, err)
		}
	}
	return nil
}

var errNacked = errors.New("raw amqp: the broker refused a publish (negative confirm)")

// rawAMQPPipe streams messages through a durable queue of its own with
// amqp091-go alone, with the carrier's strongest settings: each message a
// persistent, mandatory publish; publisher confirms, deferred, at most
// DefaultMaxPendingConfirms outstanding; a consumer on its own connection
// with the carrier's prefetch, acking each message after taking it. The
// queue is deleted on close.
func rawAMQPPipe(dial func(string) (*amqp091.Connection, error), queue string, prefetch int, log *slog.Logger, deliver deliverFunc) (*pipe, error) {
	pubConn, err := dial("bridge bench raw publisher")
	if err != nil {
		return nil, err
	}
	subConn, err := dial("bridge bench raw consumer")
	if err != nil {
		pubConn.Close()
		return nil, err
	}
	closing := make(chan struct{})
	received := make(chan struct{})
	cleanup := func(consuming bool) {
		close(closing)
		subConn.Close()
		if consuming {
			<-received
		}
		if err := deleteQueues(pubConn, queue); err != nil {
			log.Warn("raw amqp: deleting the bench's queue", "err", err)
		}
		pubConn.Close()
	}
	fail := func(err error) (*pipe, error) {
		cleanup(false)
		return nil, fmt.Errorf("raw amqp: %w", err)
	}
	pub, err := pubConn.Channel()
	if err != nil {
		return fail(err)
	}
	if _, err := pub.QueueDeclare(queue, true, false, false, false, amqp091.Table{"x-single-active-consumer": true}); err != nil {
		return fail(err)
	}
	if err := pub.Confirm(false); err != nil {
		return fail(err)
	}
	sub, err := subConn.Channel()
	if err != nil {
		return fail(err)
	}
	if err := sub.Qos(prefetch, 0, false); err != nil {
		return fail(err)
	}
	deliveries, err := sub.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return fail(err)
	}
	p := &pipe{failed: make(chan error, 1)}
	go func() {
		defer close(received)
		for d := range deliveries {
			deliver(d.Body, time.Now())
			if err := d.Ack(false); err != nil {
				p.fail(fmt.Errorf("raw amqp ack: %w", err))
				return
			}
		}
		select {
		case <-closing:
		default:
			p.fail(errors.New("raw amqp: the broker closed the consumer"))
		}
	}()

	// pending is used by one sending goroutine at a time: a round's sender
	// ends before the next round's starts.
	pending := make([]*amqp091.DeferredConfirmation, 0, amqpcarrier.DefaultMaxPendingConfirms)
	confirmed := func(ctx context.Context, c *amqp091.DeferredConfirmation) error {
		ok, err := c.WaitContext(ctx)
		switch {
		case err != nil:
			return err
		case !ok:
			return errNacked
		}
		return nil
	}
	p.send = func(ctx context.Context, msg []byte) error {
		if len(pending) == amqpcarrier.DefaultMaxPendingConfirms {
			if err := confirmed(ctx, pending[0]); err != nil {
				return err
			}
			pending = pending[1:]
		}
		c, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: msg})
		if err != nil {
			return err
		}
		pending = append(pending, c)
		return nil
	}
	p.flush = func(ctx context.Context) error {
		for _, c := range pending {
			if err := confirmed(ctx, c); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	p.close = func() { cleanup(true) }
	return p, nil
}
