package delivery

import (
	"context"
	"errors"
	"fmt"
)

// Carrier is what every carrier of adapters/ implements: it opens the links
// of streams, one per end, and closes them all when it closes. The service,
// its demo and bench, and the conformance suite open every link through it,
// so adding a carrier means one adapter package.
//
// Carriers return their own concrete types from their own Link method, for
// callers that want the carrier's extras (its Stats, its status); OpenLink
// is the same call behind this interface. Optional capabilities are found
// by type assertion: StatusReporter (the carrier's connection) and
// StreamDeleter (removing what a stream leaves on a broker).
type Carrier interface {
	// OpenLink opens the end of stream named by end and returns once that
	// end can receive: a frame the other end sends after OpenLink returned
	// is not lost for want of a receiver. ctx bounds the opening (a
	// connection, declaring a queue), not the link's life. Opening an end
	// whose previous link was closed attaches to the same stream again: that
	// is how an end restarts.
	OpenLink(ctx context.Context, stream string, end End) (Link, error)

	// Close closes every link the carrier opened and what it holds itself
	// (connections, a listener), and waits for its goroutines. Idempotent.
	Close() error
}

// StreamDeleter is an optional Carrier capability: a carrier whose streams
// leave something on a broker (queues, topics, a JetStream stream) deletes
// it, with whatever it still holds. Close the stream's links first. A stream
// that does not exist is not an error.
type StreamDeleter interface {
	DeleteStream(ctx context.Context, stream string) error
}

// ErrFrameTooLarge marks a frame a link refused to send because it exceeds
// the carrier's limit. It comes wrapped in a *FrameTooLargeError. The link
// is fine; the frame was not sent. Not worth retrying with the same frame:
// controllers keep under FrameSizeLimiter's limit, so only a frame written
// by hand meets it.
var ErrFrameTooLarge = errors.New("delivery: frame too large for the carrier")

// FrameTooLargeError is what every carrier's Send returns for a frame over
// its limit.
type FrameTooLargeError struct {
	Carrier string // the carrier's name: "tcp", "nats", "amqp", "kafka", "memory"
	Size    int    // the frame's size in bytes
	Limit   int    // the largest frame the link takes
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("%s: frame of %d bytes exceeds the limit of %d bytes", e.Carrier, e.Size, e.Limit)
}

// Unwrap lets errors.Is match ErrFrameTooLarge.
func (e *FrameTooLargeError) Unwrap() error { return ErrFrameTooLarge }
