package tcp

import (
	"errors"
	"fmt"
)

var (
	// ErrRefused marks a connection refused in the handshake: by the
	// listener, for a wrong secret, an unknown stream or another handshake
	// version; by the dialer, for a listener that cannot prove it knows
	// the secret. It comes wrapped in a *RefusedError. The dialing side
	// keeps retrying (the other side may be reconfigured) and warns of the
	// refusals, at most once per 10 s.
	ErrRefused = errors.New("tcp: connection refused by peer")

	// ErrClosed is returned by the methods of a Listener or a Carrier after
	// its Close.
	ErrClosed = errors.New("tcp: closed")

	// ErrStreamInUse is returned by Listener.Link (and Carrier.Link for its
	// listening end) for a stream whose link is open already. Close that
	// link first.
	ErrStreamInUse = errors.New("tcp: stream already has a link on this listener")
)

// RefusedError says why a handshake failed, from the side that refused.
type RefusedError struct {
	Stream string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("tcp: stream %q: refused: %s", e.Stream, e.Reason)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }
