package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// amqpDLQ keeps dead letters in a durable queue of their own
// (BRIDGE_DLQ=carrier with BRIDGE_TRANSPORT=amqp): a message a dead letter,
// persistent, its body the DeadLetter's JSON, its message-id the
// delivery's key. record returns once the broker confirmed each (publisher
// confirms: stored), and fails if one came back unroutable. list consumes the queue's messages without
// acknowledging them, dropping (acknowledging) a repeat of a delivery (a
// consumer killed between the record and the confirmation); remove
// acknowledges those replayed; Close hands the others back to the queue,
// in their place. It starts no goroutine of its own beyond amqp091-go's.
type amqpDLQ struct {
	conn    *amqp091.Connection
	queue   string
	timeout time.Duration

	mu      sync.Mutex // over pub, returns, peek and the cache
	pub     *amqp091.Channel
	returns chan amqp091.Return // of pub: dead letters the broker could not route
	peek    *amqp091.Channel
	cached  struct {
		count  int
		oldest time.Time
		valid  bool
	}
	listCh *amqp091.Channel // list's, until Close
}

func openAMQPDLQ(ctx context.Context, cfg *Config, name string, log *slog.Logger) (*amqpDLQ, error) {
	acfg, err := cfg.AMQPConfig(log)
	if err != nil {
		return nil, err
	}
	dial := amqp091.Config{Properties: amqp091.Table{"connection_name": "bridge " + cfg.Stream + " dlq", "product": "bridge"}}
	if acfg.TLS != nil {
		dial.TLSClientConfig = acfg.TLS.Clone()
	}
	conn, err := amqp091.DialConfig(cfg.AMQPURL, dial)
	if err != nil {
		return nil, fmt.Errorf("dead-letter queue: connecting to %s: %w", redact(cfg.AMQPURL), err)
	}
	q := &amqpDLQ{conn: conn, queue: cfg.AMQPQueuePrefix + "." + name, timeout: 10 * time.Second}
	if err := q.channels(); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := q.pub.QueueDeclare(q.queue, true, false, false, false, amqp091.Table{"x-queue-type": "classic"}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
	}
	return q, nil
}

// channels opens the channels that are not open: an error closes a channel.
func (q *amqpDLQ) channels() error {
	var err error
	if q.pub == nil || q.pub.IsClosed() {
		if q.pub, err = q.conn.Channel(); err != nil {
			return fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
		}
		if err = q.pub.Confirm(false); err != nil {
			return fmt.Errorf("dead-letter queue %s: publisher confirms: %w", q.queue, err)
		}
		// Room for every dead letter of a batch: record drains it.
		q.returns = q.pub.NotifyReturn(make(chan amqp091.Return, maxSinkBatch))
	}
	if q.peek == nil || q.peek.IsClosed() {
		if q.peek, err = q.conn.Channel(); err != nil {
			return fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
		}
	}
	return nil
}

func (q *amqpDLQ) String() string { return "AMQP queue " + q.queue }

func (q *amqpDLQ) Close() error { return q.conn.Close() }

func (q *amqpDLQ) record(ctx context.Context, dls []DeadLetter) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.channels(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	confirms := make([]*amqp091.DeferredConfirmation, len(dls))
	for i := range dls {
		body, err := json.Marshal(&dls[i])
		if err != nil {
			return err
		}
		confirms[i], err = q.pub.PublishWithDeferredConfirmWithContext(ctx, "", q.queue, true, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, ContentType: "application/json", MessageId: dls[i].key(), Timestamp: dls[i].Time, Body: body,
		})
		if err != nil {
			return fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
		}
	}
	for _, c := range confirms {
		acked, err := c.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("dead-letter queue %s: awaiting the broker's confirmation: %w", q.queue, err)
		}
		if !acked {
			return fmt.Errorf("dead-letter queue %s: the broker refused a dead letter (nack)", q.queue)
		}
	}
	// A dead letter the broker could not route (the queue deleted) comes
	// back before its confirmation: confirmed, yet stored nowhere.
	select {
	case r := <-q.returns:
		return fmt.Errorf("dead-letter queue %s: the broker stored no dead letter (%d %s): does the queue still exist?", q.queue, r.ReplyCode, r.ReplyText)
	default:
	}
	q.cached.valid = false
	return nil
}

func (q *amqpDLQ) stats() (int, time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.channels(); err != nil {
		return 0, time.Time{}, err
	}
	st, err := q.peek.QueueDeclarePassive(q.queue, true, false, false, false, amqp091.Table{"x-queue-type": "classic"})
	if err != nil {
		return 0, time.Time{}, err
	}
	if q.cached.valid && q.cached.count == st.Messages {
		return st.Messages, q.cached.oldest, nil
	}
	// The oldest's time: a look at the head, handed back in its place.
	var oldest time.Time
	if st.Messages > 0 {
		d, ok, err := q.peek.Get(q.queue, false)
		if err != nil {
			return 0, time.Time{}, err
		}
		if ok {
			oldest = d.Timestamp
			if err := d.Nack(false, true); err != nil {
				return 0, time.Time{}, err
			}
		}
	}
	q.cached.count, q.cached.oldest, q.cached.valid = st.Messages, oldest, true
	return st.Messages, oldest, nil
}

func (q *amqpDLQ) list(ctx context.Context) ([]DeadLetter, int, error) {
	ch, err := q.conn.Channel()
	if err != nil {
		return nil, 0, fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
	}
	st, err := ch.QueueDeclarePassive(q.queue, true, false, false, false, amqp091.Table{"x-queue-type": "classic"})
	if err != nil {
		ch.Close()
		return nil, 0, fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
	}
	q.listCh = ch // Close gives back what remove did not take
	if st.Messages == 0 {
		return nil, 0, nil
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.queue, "", false, true, false, false, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("dead-letter queue %s: %w", q.queue, err)
	}
	var records []DeadLetter
	bad := 0
	seen := map[string]bool{}
	for range st.Messages {
		var d amqp091.Delivery
		select {
		case d = <-deliveries:
		case <-time.After(q.timeout):
			return nil, 0, fmt.Errorf("dead-letter queue %s: %d messages said waiting, %d came", q.queue, st.Messages, len(records)+bad)
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		var dl DeadLetter
		switch {
		case json.Unmarshal(d.Body, &dl) != nil:
			bad++ // unacknowledged: back in the queue on Close
		case seen[dl.key()]:
			d.Ack(false) // a repeat of a delivery already listed
		default:
			seen[dl.key()] = true
			dl.ref = d.DeliveryTag
			records = append(records, dl)
		}
	}
	return records, bad, nil
}

func (q *amqpDLQ) remove(_ context.Context, dls []DeadLetter) error {
	for i := range dls {
		if err := q.listCh.Ack(dls[i].ref, false); err != nil {
			return fmt.Errorf("dead-letter queue %s: acknowledging a replayed dead letter: %w", q.queue, err)
		}
	}
	return nil
}

func (q *amqpDLQ) tidy(context.Context) error { return nil }
