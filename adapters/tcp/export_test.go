package tcp

import (
	"context"
	"fmt"

	"github.com/bridge-mq/bridge/delivery"
)

// Cut breaks the link's current connection as a network fault would: the
// socket closes under both goroutines. Tests only.
func (l *Link) Cut() {
	l.mu.Lock()
	c := l.cur
	l.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// CutStream cuts the connection of every open link of stream the carrier
// made. Tests only.
func (c *Carrier) CutStream(stream string) {
	for _, l := range c.links.All() {
		if l.stream == stream {
			l.Cut()
		}
	}
}

// Inject sends frame to the to end of stream as someone on the path of a
// plain connection could: into the connection, from the side of the
// carrier's link of the other end, among that link's own frames (under any
// sealing its user wraps it in). It waits for a connection until ctx ends.
// Tests only.
func (c *Carrier) Inject(ctx context.Context, stream string, to delivery.End, frame []byte) error {
	for _, l := range c.links.All() {
		if l.stream == stream && l.end != to {
			return l.Send(ctx, frame)
		}
	}
	return fmt.Errorf("tcp: no link of stream %q sends to its %v end", stream, to)
}
