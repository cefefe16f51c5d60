package delivery

import "context"

// Confirmation is the reply to a message sent with SendWithConfirmation. It
// resolves once the consumer application confirmed the message, or with an
// error if the producer controller stopped first.
type Confirmation struct {
	seqNr SeqNr
	done  chan struct{}
	err   error // written before done is closed
}

func newConfirmation(seqNr SeqNr) *Confirmation {
	return &Confirmation{seqNr: seqNr, done: make(chan struct{})}
}

// SeqNr is the message's sequence number (for a chunked message, that of its
// last chunk).
func (c *Confirmation) SeqNr() SeqNr { return c.seqNr }

// Done is closed when the confirmation resolves.
func (c *Confirmation) Done() <-chan struct{} { return c.done }

// Err is nil once the message is confirmed, ErrClosed if the controller
// stopped before it was, and nil while it is still pending (check Done).
func (c *Confirmation) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Wait waits for the confirmation. It returns nil when the message is
// confirmed, ctx's error if ctx ends first, or ErrClosed.
func (c *Confirmation) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Confirmation) resolve(err error) {
	c.err = err
	close(c.done)
}
