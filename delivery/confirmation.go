package delivery

import "context"

// Confirmation is the reply to a message sent with SendWithConfirmation. It
// resolves in two stages: Stored, once the message is in the producer's
// durable queue and survives a crash of this process (at once, when there is
// no durable queue), and Done, once the consumer application confirmed it.
// Either resolves with an error if the producer controller stops first.
type Confirmation struct {
	seqNr     SeqNr
	stored    chan struct{}
	storedErr error // written before stored is closed
	done      chan struct{}
	err       error // written before done is closed
}

func newConfirmation(seqNr SeqNr) *Confirmation {
	return &Confirmation{seqNr: seqNr, stored: make(chan struct{}), done: make(chan struct{})}
}

// Stored is closed once the message is durably stored (see Confirmation).
func (c *Confirmation) Stored() <-chan struct{} { return c.stored }

// WaitStored waits until the message is durably stored. It returns nil
// then, ctx's error if ctx ends first, or ErrClosed (possibly wrapped) if the
// controller stopped before storing it.
func (c *Confirmation) WaitStored(ctx context.Context) error {
	select {
	case <-c.stored:
		return c.storedErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Confirmation) resolveStored(err error) {
	c.storedErr = err
	close(c.stored)
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

// fail resolves both stages that are still pending with err.
func (c *Confirmation) fail(err error) {
	select {
	case <-c.stored:
	default:
		c.resolveStored(err)
	}
	c.resolve(err)
}
