package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/delivery"
)

// subscriber carries one direction of a link from the broker: it consumes
// one queue with manual acks and hands each delivery to Receive with a
// Release that acks it. When its channel breaks or the broker cancels the
// consumer (the queue was deleted), it opens another channel, declares the
// queue again and consumes again; what it had not acked, the broker
// delivers again.
//
// It runs one goroutine (run), which alone owns the AMQP channel.
type subscriber struct {
	cfg    *Config
	keeper *keeper
	queue  string
	log    *slog.Logger

	frames chan delivery.Frame // run -> Receive

	down       errBox // why the last session ended or could not open
	connected  atomic.Bool
	channel    atomic.Pointer[amqp091.Channel] // the session's, for tests that break it
	reconnects atomic.Uint64
	stats      *linkCounters
	done       chan struct{}
}

// subSession is one AMQP channel consuming the queue.
type subSession struct {
	ch         *amqp091.Channel
	closed     chan *amqp091.Error
	cancels    chan string
	deliveries <-chan amqp091.Delivery
}

// errCancelled is why a session ends when the broker cancels its consumer.
var errCancelled = errors.New("the broker cancelled the consumer (queue deleted?)")

func newSubscriber(cfg *Config, k *keeper, queue string, stats *linkCounters, log *slog.Logger) *subscriber {
	return &subscriber{
		cfg: cfg, keeper: k, queue: queue, stats: stats,
		log:    log.With("queue", queue, "direction", "consume"),
		frames: make(chan delivery.Frame),
		done:   make(chan struct{}),
	}
}

// start runs the subscriber until ctx ends, with the session Link opened.
func (s *subscriber) start(ctx context.Context, first *subSession) {
	s.channel.Store(first.ch)
	s.connected.Store(true)
	go s.run(ctx, first)
}

func (s *subscriber) run(ctx context.Context, first *subSession) {
	defer close(s.done)
	defer s.connected.Store(false)
	wait := s.cfg.reconnectWaits()
	sess := first
	for {
		if sess == nil {
			var ok bool
			if sess, ok = openRetrying(ctx, s.open, wait, &s.down, s.log, "consume"); !ok {
				return
			}
			n := s.reconnects.Add(1)
			s.log.Info("consuming again", "reconnects", n)
		}
		s.channel.Store(sess.ch)
		s.connected.Store(true)
		err := s.forward(ctx, sess)
		s.down.set(err)
		s.connected.Store(false)
		s.channel.Store(nil)
		// Closing the channel hands every delivery not acked back to the
		// queue, for this link's next session or the next consumer end.
		_ = sess.ch.Close()
		sess = nil
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errCancelled) {
			s.stats.cancels.Add(1)
			s.log.Warn("consumer cancelled by the broker; consuming again", "err", err, "passive", s.cfg.Passive)
		} else {
			s.log.Warn("consuming channel closed; reopening", "err", err)
		}
	}
}

// open opens a channel on the current connection, sets the prefetch,
// declares the queue and starts consuming. On failure it returns the
// connection's loss signal to wait on, if it has one.
func (s *subscriber) open(ctx context.Context) (*subSession, <-chan struct{}, error) {
	conn, lost, err := s.keeper.current(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, lost, err
	}
	sess := &subSession{
		ch:      ch,
		closed:  ch.NotifyClose(make(chan *amqp091.Error, 1)),
		cancels: ch.NotifyCancel(make(chan string, 1)),
	}
	if err := ch.Qos(s.cfg.Prefetch, 0, false); err != nil {
		_ = ch.Close()
		return nil, lost, err
	}
	if err := declare(ch, s.cfg, s.queue); err != nil {
		_ = ch.Close()
		return nil, lost, err
	}
	sess.deliveries, err = ch.Consume(s.queue, "", false, false, false, false, nil)
	if err != nil {
		_ = ch.Close()
		return nil, lost, fmt.Errorf("consume queue %q: %w", s.queue, err)
	}
	return sess, lost, nil
}

// forward hands deliveries to Receive until the session ends, and says
// why.
func (s *subscriber) forward(ctx context.Context, sess *subSession) error {
	for {
		select {
		case d, ok := <-sess.deliveries:
			if !ok {
				return sess.endReason()
			}
			s.stats.received.Add(1)
			if d.Redelivered {
				s.stats.redelivered.Add(1)
			}
			f := delivery.Frame{Data: d.Body, Release: s.releaser(d.Acknowledger, d.DeliveryTag)}
			select {
			case s.frames <- f:
			case <-ctx.Done():
				return ctx.Err()
			}
		case _, ok := <-sess.cancels:
			if ok {
				return errCancelled
			}
			// The library closes it with the channel; the close's reason
			// comes next.
			sess.cancels = nil
		case err := <-sess.closed:
			return closeReason(err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// releaser acks one delivery on the channel that delivered it. Once that
// channel has closed the ack fails, and must: the broker has already
// handed the frame back to the queue, and the tag means nothing on any
// other channel. (This is why the carrier opens a new *amqp091.Channel for
// each session rather than letting the library recover one in place.)
func (s *subscriber) releaser(ack amqp091.Acknowledger, tag uint64) func() {
	return func() {
		if err := ack.Ack(tag, false); err != nil {
			s.log.Debug("ack after the channel closed; the broker delivers the frame again", "err", err)
			return
		}
		s.stats.released.Add(1)
	}
}

// endReason says why the library closed the deliveries: it reports a
// cancel, or the channel's close, before it closes them.
func (sess *subSession) endReason() error {
	select {
	case _, ok := <-sess.cancels:
		if ok {
			return errCancelled
		}
	default:
	}
	select {
	case err := <-sess.closed:
		return closeReason(err)
	default:
		return errors.New("the library ended the deliveries")
	}
}

func closeReason(err *amqp091.Error) error {
	if err == nil {
		return amqp091.ErrClosed
	}
	return err
}
