package adaptertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// DeletingCarrier is a carrier that can delete what its streams leave on a
// broker.
type DeletingCarrier interface {
	delivery.Carrier
	delivery.StreamDeleter
}

// DeleteStreamsAtCleanup returns c, except that every stream it opens a
// link of is deleted (DeleteStream) when t ends, after the links opened
// after it are closed: for tests on a broker others share, which keeps the
// queues, topics and JetStream streams of a run.
func DeleteStreamsAtCleanup(t testing.TB, c DeletingCarrier) delivery.Carrier {
	return &deletingCarrier{DeletingCarrier: c, t: t, seen: map[string]bool{}}
}

type deletingCarrier struct {
	DeletingCarrier
	t    testing.TB
	mu   sync.Mutex
	seen map[string]bool
}

func (c *deletingCarrier) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	c.mu.Lock()
	first := !c.seen[stream]
	c.seen[stream] = true
	c.mu.Unlock()
	if first {
		c.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.DeleteStream(ctx, stream); err != nil {
				c.t.Errorf("cleanup: delete stream %s: %v", stream, err)
			}
		})
	}
	return c.DeletingCarrier.OpenLink(ctx, stream, end)
}
