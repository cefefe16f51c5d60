package delivery

import (
	"context"
	"strconv"
)

// Link is the carrier contract: one end of a stream's duplex link of frames.
// A producer controller sends data frames on it and receives control frames;
// a consumer controller does the reverse. Carriers (adapters/...) implement
// it and return their own concrete types.
//
// A controller calls Send from one goroutine and Receive from another, and
// may call Close from a third; implementations must allow that.
type Link interface {
	// Send hands one frame to the carrier for the other end. It may block
	// for back-pressure until ctx is done. A nil error means the carrier
	// took the frame, not that it arrived: the protocol recovers lost frames
	// by resending. Send must not keep frame after it returns; the caller
	// reuses the buffer. After Close it returns an error wrapping
	// ErrLinkClosed.
	Send(ctx context.Context, frame []byte) error

	// Receive waits for the next frame from the other end. It returns an
	// error only when ctx is done or the link can deliver nothing more
	// (closed: an error wrapping ErrLinkClosed, or broken for good); a carrier
	// that reconnects by itself does not report its transient failures here.
	Receive(ctx context.Context) (Frame, error)

	// Close releases the link's resources and unblocks Send and Receive. It
	// is idempotent. Frames received and not released stay with the carrier
	// (a broker redelivers them to the next consumer).
	Close() error
}

// Frame is one frame received from a Link.
type Frame struct {
	// Data is the frame's bytes. It belongs to the receiver: a carrier does
	// not reuse it after Receive returns.
	Data []byte

	// Release, when not nil, is the carrier's broker-level acknowledgement.
	// A consumer controller calls it once every message in the frame has
	// been confirmed by the application, found a duplicate, or dropped as
	// useless, so a queue keeps a message until the application is done
	// with it. It is called at most once, from the controller's goroutine,
	// and must not block for long. A frame that is never released (the
	// controller was closed first) stays with the broker.
	Release func()
}

// FrameSizeLimiter is an optional Link capability: a carrier that cannot
// carry frames above a size (NATS's max_payload, for one) reports it, and
// the controllers keep their frames and chunks under it. A type that wraps a
// Link must forward this (and StatusReporter), or the controller writes
// frames the carrier refuses, and resends them, forever.
type FrameSizeLimiter interface {
	MaxFrameSize() int
}

// End names the end of a stream a link serves: the producer end sends data
// frames and receives control frames, the consumer end the reverse.
// Carriers that route the two directions differently (a subject, queue or
// topic each) take it when a link is made.
type End int

const (
	ProducerEnd End = iota + 1
	ConsumerEnd
)

func (e End) String() string {
	switch e {
	case ProducerEnd:
		return "producer"
	case ConsumerEnd:
		return "consumer"
	}
	return "End(" + strconv.Itoa(int(e)) + ")"
}

// LinkStatus is a carrier's view of its connection.
type LinkStatus struct {
	Connected  bool   // the link can reach the other end (or its broker) now
	Reconnects uint64 // connections re-established after a loss, over the link's lifetime
	Err        error  // while not connected, the last reason why, if known
}

// StatusReporter is an optional Link capability: a carrier that connects to
// something says whether it is connected and how often it reconnected, for
// readiness checks and metrics. A link without it is taken to be always
// connected.
type StatusReporter interface {
	Status() LinkStatus
}
