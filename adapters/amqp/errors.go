package amqp

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by Carrier.Link after Carrier.Close. Not worth
	// retrying on the same Carrier.
	ErrClosed = errors.New("amqp: carrier closed")

	// ErrUnroutable marks a frame the broker could not route to its queue.
	// It comes wrapped in an *UnroutableError.
	ErrUnroutable = errors.New("amqp: frame unroutable")
)

// ConnectError is returned by New when a connection to the broker cannot
// be made (unreachable, refused, bad credentials, TLS). URL has its
// password hidden. Worth retrying: the broker may come up.
type ConnectError struct {
	URL  string // the broker's URI, password hidden
	Role string // "publish" or "consume"
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("amqp: connect (%s) to %s: %v", e.Role, e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// DeclareError says that declaring (or, with Config.Passive, checking) a
// queue, an exchange or a binding failed: a missing entity, one declared
// earlier with other arguments, a denied permission. Err is usually an
// *amqp091.Error with the broker's reply code. Not worth retrying until the
// topology or the configuration is fixed.
type DeclareError struct {
	Kind string // "queue", "exchange" or "binding"
	Name string
	Err  error
}

func (e *DeclareError) Error() string {
	return fmt.Sprintf("amqp: declare %s %q: %v", e.Kind, e.Name, e.Err)
}

func (e *DeclareError) Unwrap() error { return e.Err }

// UnroutableError says the broker returned a frame published as mandatory:
// no queue is bound to the exchange under the frame's routing key (the
// queue was deleted, or, with Config.Passive, never bound). Send returns it
// until a publish is routed again; the frames it refused are resent by the
// protocol. Worth retrying once the topology is back.
type UnroutableError struct {
	Exchange   string // "" is the default exchange
	RoutingKey string // the queue's name
	Code       uint16 // the broker's reply code (312 NO_ROUTE)
	Reason     string // the broker's reply text
}

func (e *UnroutableError) Error() string {
	exchange := e.Exchange
	if exchange == "" {
		exchange = "(default)"
	}
	return fmt.Sprintf("amqp: frame returned unroutable by exchange %s, routing key %q: %d %s", exchange, e.RoutingKey, e.Code, e.Reason)
}

func (e *UnroutableError) Unwrap() error { return ErrUnroutable }

// StreamNameError is returned by Carrier.Link for a stream name that makes
// no valid queue name. Not worth retrying with the same name.
type StreamNameError struct {
	Stream string
	Reason string
}

func (e *StreamNameError) Error() string {
	return fmt.Sprintf("amqp: stream %q: %s", e.Stream, e.Reason)
}
