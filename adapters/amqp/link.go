package amqp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bridge-mq/bridge/delivery"
)

// Link is one end of a stream over RabbitMQ: a delivery.Link that
// publishes to the queue of one direction and consumes the queue of the
// other. It also reports its status (delivery.StatusReporter) and its
// frame limit (delivery.FrameSizeLimiter).
//
// A Link runs two goroutines, a publisher and a subscriber, each owning
// one AMQP channel; Close stops them and waits for them.
type Link struct {
	carrier *Carrier
	stream  string
	end     delivery.End
	out     *publisher
	in      *subscriber
	stats   linkCounters

	ctx       context.Context // ends when the link closes
	cancel    context.CancelFunc
	closeOnce sync.Once
}

var (
	_ delivery.Link             = (*Link)(nil)
	_ delivery.StatusReporter   = (*Link)(nil)
	_ delivery.FrameSizeLimiter = (*Link)(nil)
)

// Send hands frame to the publisher, which publishes it (persistent for
// data frames) and keeps it until the broker confirms it, publishing it
// again if the confirm is lost. It blocks, until ctx ends, while
// Config.MaxPendingConfirms frames await their confirms, which includes
// the time the link is disconnected: the frames it holds then are
// published once it reconnects, and the protocol's own resend covers the
// rest. A frame over Config.MaxFrameSize is refused with a
// *delivery.FrameTooLargeError (the frame is not sent; the link is fine);
// while the broker cannot route frames to the queue, Send refuses them
// with the *UnroutableError or *DeclareError that says why. After Close it
// returns an error wrapping delivery.ErrLinkClosed.
func (l *Link) Send(ctx context.Context, frame []byte) error {
	if l.ctx.Err() != nil {
		return fmt.Errorf("amqp: send: %w", delivery.ErrLinkClosed)
	}
	if max := l.carrier.cfg.MaxFrameSize; len(frame) > max {
		return &delivery.FrameTooLargeError{Carrier: "amqp", Size: len(frame), Limit: max}
	}
	if err := l.out.failure.get(); err != nil {
		return fmt.Errorf("amqp: send to queue %q: %w", l.out.queue, err)
	}
	body := slices.Clone(frame)
	select {
	case l.out.frames <- body:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return fmt.Errorf("amqp: send: %w", delivery.ErrLinkClosed)
	}
}

// Receive waits for the next frame from the other end, across reconnects.
// The frame's Release acks it to the broker; a frame never released goes
// back to the queue when the link closes or its channel breaks. Receive
// returns an error only when ctx ends or the link is closed (an error
// wrapping delivery.ErrLinkClosed).
func (l *Link) Receive(ctx context.Context) (delivery.Frame, error) {
	if l.ctx.Err() != nil {
		return delivery.Frame{}, fmt.Errorf("amqp: receive: %w", delivery.ErrLinkClosed)
	}
	select {
	case f := <-l.in.frames:
		return f, nil
	case <-ctx.Done():
		return delivery.Frame{}, ctx.Err()
	case <-l.ctx.Done():
		return delivery.Frame{}, fmt.Errorf("amqp: receive: %w", delivery.ErrLinkClosed)
	}
}

// Close stops the link and waits for its goroutines. It closes its
// consuming channel, so the broker delivers again, to the next end, every
// frame this one received and did not release. Frames still awaiting
// their publisher confirms are abandoned (the protocol resends what they
// carried). While the broker blocks the publishing connection (a resource
// alarm), a publish in progress holds Close up until the alarm clears or
// Carrier.Close closes the connection. Idempotent.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.out.done
		<-l.in.done
		l.carrier.forget(l)
	})
	return nil
}

// MaxFrameSize reports Config.MaxFrameSize, so the controllers keep their
// frames under it.
func (l *Link) MaxFrameSize() int { return l.carrier.cfg.MaxFrameSize }

// Status says whether both of the link's channels are open and its frames
// routed, and if not why (the last error known), and how often its
// channels were opened again after a loss (a broken connection or channel,
// a cancelled consumer).
func (l *Link) Status() delivery.LinkStatus {
	st := delivery.LinkStatus{Reconnects: l.out.reconnects.Load() + l.in.reconnects.Load()}
	failure := l.out.failure.get()
	outUp, inUp := l.out.connected.Load(), l.in.connected.Load()
	switch {
	case l.ctx.Err() != nil:
		st.Err = fmt.Errorf("amqp: %w", delivery.ErrLinkClosed)
	case failure != nil:
		st.Err = failure // connected, maybe, but frames go nowhere
	case !outUp:
		st.Err = l.out.down.get()
	case !inUp:
		st.Err = l.in.down.get()
	default:
		st.Connected = true
	}
	return st
}

// Stream is the stream the link serves.
func (l *Link) Stream() string { return l.stream }

// End is the end of the stream the link serves.
func (l *Link) End() delivery.End { return l.end }

// LinkStats counts what a link did with the broker over its lifetime.
type LinkStats struct {
	Published   uint64 // frames published for the first time
	Republished uint64 // frames published again: confirm lost or negative, or returned
	Confirmed   uint64 // publishes the broker confirmed
	Nacked      uint64 // confirms negative or lost with their channel
	Returned    uint64 // publishes the broker returned as unroutable
	Received    uint64 // deliveries handed to Receive
	Redelivered uint64 // of which the broker had delivered before (to this end or another)
	Released    uint64 // deliveries acked on release
	Cancels     uint64 // consumers the broker cancelled (queue deleted)
	Reconnects  uint64 // channels opened again after a loss
}

type linkCounters struct {
	published, republished, confirmed, nacked, returned atomic.Uint64
	received, redelivered, released, cancels            atomic.Uint64
}

// Stats returns the link's counters. Safe to call at any time from any
// goroutine.
func (l *Link) Stats() LinkStats {
	c := &l.stats
	return LinkStats{
		Published:   c.published.Load(),
		Republished: c.republished.Load(),
		Confirmed:   c.confirmed.Load(),
		Nacked:      c.nacked.Load(),
		Returned:    c.returned.Load(),
		Received:    c.received.Load(),
		Redelivered: c.redelivered.Load(),
		Released:    c.released.Load(),
		Cancels:     c.cancels.Load(),
		Reconnects:  l.Status().Reconnects,
	}
}

// errBox holds the latest error of a goroutine for others to read.
type errBox struct {
	mu  sync.Mutex
	err error
}

func (b *errBox) set(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

func (b *errBox) get() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
