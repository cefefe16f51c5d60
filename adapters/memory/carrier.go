package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bridge-mq/bridge/adapters/internal/linkset"
	"github.com/bridge-mq/bridge/delivery"
)

// ErrClosed is returned by Carrier.Link once the carrier is closed. Not
// worth retrying on the same carrier.
var ErrClosed = errors.New("memory: carrier closed")

// Carrier is the memory carrier as a delivery.Carrier: each stream gets a
// Pipe of its own, made with the carrier's Options on the stream's first
// use, and its links are the ends of that pipe. Like a Pipe it starts no
// goroutines.
type Carrier struct {
	opts Options

	mu     sync.Mutex
	pipes  map[string]*Pipe
	closed bool
}

var _ delivery.Carrier = (*Carrier)(nil)

// NewCarrier checks opts, as NewPipe does, and returns a carrier with no
// streams yet.
func NewCarrier(opts Options) (*Carrier, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Carrier{opts: opts, pipes: map[string]*Pipe{}}, nil
}

// Link attaches the end of stream named by end to the stream's pipe, as
// Pipe.Producer and Pipe.Consumer do: a new link of an end closes the
// previous one. It fails with ErrClosed after Close, and with ctx's error
// if ctx is done.
func (c *Carrier) Link(ctx context.Context, stream string, end delivery.End) (*Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if end != delivery.ProducerEnd && end != delivery.ConsumerEnd {
		return nil, fmt.Errorf("memory: link for stream %q: unknown end %v", stream, end)
	}
	c.mu.Lock() // through the attach, so that Close closes what it attaches
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	p := c.pipeLocked(stream)
	if end == delivery.ProducerEnd {
		return p.Producer(), nil
	}
	return p.Consumer(), nil
}

// OpenLink is Link, for delivery.Carrier.
func (c *Carrier) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	return linkset.Opened(c.Link(ctx, stream, end))
}

// Pipe returns the pipe of stream, made on its first use, so that a test
// can Cut and Restore it and read its Stats.
func (c *Carrier) Pipe(stream string) *Pipe {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pipeLocked(stream)
}

func (c *Carrier) pipeLocked(stream string) *Pipe {
	p, ok := c.pipes[stream]
	if !ok {
		p, _ = NewPipe(c.opts) // checked by NewCarrier
		c.pipes[stream] = p
	}
	return p
}

// Close closes every pipe, and with them every link. Link fails
// afterwards. Idempotent.
func (c *Carrier) Close() error {
	c.mu.Lock()
	c.closed = true
	pipes := make([]*Pipe, 0, len(c.pipes))
	for _, p := range c.pipes {
		pipes = append(pipes, p)
	}
	c.mu.Unlock()
	for _, p := range pipes {
		p.Close()
	}
	return nil
}
