package memory_test

import (
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// spec describes a memory carrier with opts to the suite; it is closed at
// cleanup. A cut cuts the stream's pipe and restores it at once: the links
// see a broken connection, or a broker that dropped its clients.
func spec(t *testing.T, name string, opts memory.Options) adaptertest.Spec {
	c, err := memory.NewCarrier(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return adaptertest.Spec{
		Name:    name,
		Carrier: c,
		Cut: func(_ testing.TB, stream string) {
			pipe := c.Pipe(stream)
			pipe.Cut()
			pipe.Restore()
		},
		Inject: func(_ testing.TB, stream string, to delivery.End, frame []byte) {
			c.Pipe(stream).Inject(to, frame)
		},
		Queue:        opts.Queue,
		Release:      opts.Queue,
		MaxFrameSize: opts.MaxFrameSize,
	}
}

func TestConformance(t *testing.T) {
	t.Run("connection", func(t *testing.T) {
		adaptertest.Run(t, spec(t, "memory", memory.Options{MaxFrameSize: 1 << 20}))
	})
	t.Run("queue", func(t *testing.T) {
		adaptertest.Run(t, spec(t, "memory queue", memory.Options{Queue: true, Capacity: 1 << 16}))
	})
}
