package nats

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bridge-mq/bridge/delivery"
)

// Link is one end of a stream over NATS: a delivery.Link with its own
// client connection. The producer end publishes data frames and subscribes
// to control frames; the consumer end does the reverse. In ModeJetStream
// data frames go through the stream's JetStream stream and durable consumer.
//
// Send and Receive may be called from different goroutines, and Close from
// a third. A Link starts goroutines of its own only in ModeJetStream: the
// producer end one that waits for publish acks and publishes again what
// failed; the consumer end one that keeps held frames alive and one that
// recreates a consumer the server lost. Close waits for them. nats.go runs
// its own goroutines for the connection and subscriptions.
type Link struct {
	carrier *Carrier
	key     linkKey
	names   names
	log     *slog.Logger
	conn    *conn

	in        chan delivery.Frame // frames for Receive
	closed    chan struct{}
	life      context.Context // ends at Close: bounds the link's calls to the server
	endLife   context.CancelFunc
	closeOnce sync.Once

	sub  *natsgo.Subscription // core: control frames (producer) or data frames (consumer)
	pub  *jsPublisher         // JetStream producer end
	cons *jsConsumer          // JetStream consumer end

	maxFrame int // the largest frame Send takes
	stats    linkCounters
}

var (
	_ delivery.Link             = (*Link)(nil)
	_ delivery.FrameSizeLimiter = (*Link)(nil)
	_ delivery.StatusReporter   = (*Link)(nil)
)

// inboxSize is how many received frames wait for Receive before the
// subscription's own pending queue takes the rest.
const inboxSize = 64

// closeFlushTimeout bounds how long Close waits to hand the server the
// acks and naks it still holds.
const closeFlushTimeout = 2 * time.Second

// LinkStats counts what a link did. Counts are totals over its lifetime.
type LinkStats struct {
	FramesSent     uint64
	FramesReceived uint64

	// SlowConsumerEvents counts the times the client reported this link's
	// subscription too slow (Receive fell behind); SlowConsumerDrops is how
	// many frames it dropped then. The protocol resends what they carried.
	SlowConsumerEvents uint64
	SlowConsumerDrops  uint64

	// JetStream producer end.
	Republished     uint64 // frames published again after their publish failed or timed out
	PublishFailures uint64 // frames given up on (the protocol resends their messages)

	// JetStream consumer end.
	Acked       uint64 // frames acknowledged (released by the consumer controller)
	Naked       uint64 // frames handed back to the server unreleased, at Close
	KeptAlive   uint64 // in-progress acks sent for frames held longer than a third of AckWait
	Redelivered uint64 // frames the server delivered more than once
	AckErrors   uint64 // acks, naks or in-progress acks the client could not send
}

type linkCounters struct {
	framesSent, framesReceived   atomic.Uint64
	republished, publishFailures atomic.Uint64
	acked, naked, keptAlive      atomic.Uint64
	redelivered, ackErrors       atomic.Uint64
}

// Stats returns the link's counters. Safe from any goroutine.
func (l *Link) Stats() LinkStats {
	drops := l.conn.slowConsumerDrops.Load()
	if l.sub != nil {
		if n, err := l.sub.Dropped(); err == nil && n > 0 {
			drops = max(drops, uint64(n)) // counted live while it lasts
		}
	}
	return LinkStats{
		FramesSent:         l.stats.framesSent.Load(),
		FramesReceived:     l.stats.framesReceived.Load(),
		SlowConsumerEvents: l.conn.slowConsumerEvents.Load(),
		SlowConsumerDrops:  drops,
		Republished:        l.stats.republished.Load(),
		PublishFailures:    l.stats.publishFailures.Load(),
		Acked:              l.stats.acked.Load(),
		Naked:              l.stats.naked.Load(),
		KeptAlive:          l.stats.keptAlive.Load(),
		Redelivered:        l.stats.redelivered.Load(),
		AckErrors:          l.stats.ackErrors.Load(),
	}
}

// Stream is the name of the stream the link serves.
func (l *Link) Stream() string { return l.key.stream }

// End is the end of the stream the link serves.
func (l *Link) End() delivery.End { return l.key.end }

// Status reports whether the link's connection is up, how often it
// reconnected, and while it is down, why.
func (l *Link) Status() delivery.LinkStatus { return l.conn.status() }

// MaxFrameSize is the largest frame Send takes: the server's max_payload,
// less room for the Nats-Msg-Id header in ModeJetStream (and no more than
// the JetStream stream's max_msg_size allows).
func (l *Link) MaxFrameSize() int { return l.maxFrame }

// Send publishes frame to the other end. It does not keep frame.
//
// In ModeCore (and for control frames) Send does not wait: while the
// connection is down the client keeps what is published in its reconnect
// buffer (Config.ReconnectBufSize) and Send fails once it is full; the
// protocol resends. In ModeJetStream the producer end publishes
// asynchronously and Send waits, within ctx, while
// JetStream.MaxPendingFrames or MaxPendingBytes are unacknowledged (as
// they are while the connection is down); a publish that fails or times
// out is published again, with the same Nats-Msg-Id, by the link.
//
// A frame over MaxFrameSize (the server's max_payload less the room
// JetStream's headers take) is refused with a *delivery.FrameTooLargeError;
// nothing is sent and the link stays usable. After Close, Send returns an
// error wrapping delivery.ErrLinkClosed; after the connection gave up for
// good, one wrapping ErrConnectionLost.
func (l *Link) Send(ctx context.Context, frame []byte) error {
	if l.isClosed() {
		return fmt.Errorf("nats: send on stream %s: %w", l.key.stream, delivery.ErrLinkClosed)
	}
	if len(frame) > l.maxFrame {
		return &delivery.FrameTooLargeError{Carrier: "nats", Size: len(frame), Limit: l.maxFrame}
	}
	if l.conn.isLost() {
		return fmt.Errorf("nats: send on stream %s: %w", l.key.stream, ErrConnectionLost)
	}
	var err error
	if l.pub != nil {
		err = l.pub.send(ctx, frame)
	} else {
		err = l.conn.nc.Publish(l.outSubject(), frame)
	}
	if err != nil {
		if l.isClosed() {
			return fmt.Errorf("nats: send on stream %s: %w", l.key.stream, delivery.ErrLinkClosed)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("nats: send on stream %s: %w", l.key.stream, err)
	}
	l.stats.framesSent.Add(1)
	return nil
}

// Receive waits for the next frame from the other end, across reconnects.
// In ModeJetStream frames at the consumer end carry a Release that acks
// them. It returns an error when ctx ends, when the link is closed (one
// wrapping delivery.ErrLinkClosed), or when the connection gave up for good
// (one wrapping ErrConnectionLost).
func (l *Link) Receive(ctx context.Context) (delivery.Frame, error) {
	if l.isClosed() {
		return delivery.Frame{}, fmt.Errorf("nats: receive on stream %s: %w", l.key.stream, delivery.ErrLinkClosed)
	}
	select {
	case f := <-l.in:
		l.stats.framesReceived.Add(1)
		return f, nil
	case <-l.closed:
		return delivery.Frame{}, fmt.Errorf("nats: receive on stream %s: %w", l.key.stream, delivery.ErrLinkClosed)
	case <-l.conn.lost:
		return delivery.Frame{}, fmt.Errorf("nats: receive on stream %s: %w", l.key.stream, ErrConnectionLost)
	case <-ctx.Done():
		return delivery.Frame{}, ctx.Err()
	}
}

// Close stops the link and closes its connection. At a JetStream consumer
// end, frames received and not released (and those fetched ahead of
// Receive) are nak'ed, so the server delivers them again to the next
// consumer end at once. Idempotent; it waits for the link's goroutines.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.stop(closeFlushTimeout)
		l.carrier.forget(l)
		l.log.Debug("nats: link closed")
	})
	return nil
}

// stop ends the link's goroutines and closes its connection, giving the
// connection flush to send what it buffered. Once only: Close, or a Link
// that failed to open.
func (l *Link) stop(flush time.Duration) {
	close(l.closed)
	l.endLife()
	if l.cons != nil {
		l.cons.stop()
	}
	if l.pub != nil {
		l.pub.stop()
	}
	l.conn.close(flush)
}

func (l *Link) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// outSubject is where this end publishes with core NATS.
func (l *Link) outSubject() string {
	if l.key.end == delivery.ProducerEnd {
		return l.names.data
	}
	return l.names.control
}

// onCoreMsg hands a frame received with core NATS to Receive. It runs on
// the subscription's goroutine and blocks while Receive is behind: the
// client then queues frames up to its pending limits, and reports a slow
// consumer past them.
func (l *Link) onCoreMsg(m *natsgo.Msg) {
	select {
	case l.in <- delivery.Frame{Data: m.Data}:
	case <-l.closed:
	}
}

// subscribe subscribes to the subject this end receives on with core NATS.
func (l *Link) subscribe() error {
	subject := l.names.control
	if l.key.end == delivery.ConsumerEnd {
		subject = l.names.data
	}
	sub, err := l.conn.nc.Subscribe(subject, l.onCoreMsg)
	if err != nil {
		return fmt.Errorf("nats: subscribe to %s: %w", subject, err)
	}
	l.sub = sub
	return nil
}
