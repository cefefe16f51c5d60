package memory_test

import (
	"sync"
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// pipes gives each stream a pipe of its own.
type pipes struct {
	opts memory.Options
	mu   sync.Mutex
	byID map[string]*memory.Pipe
}

func (p *pipes) get(t testing.TB, stream string) *memory.Pipe {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byID == nil {
		p.byID = map[string]*memory.Pipe{}
	}
	pipe, ok := p.byID[stream]
	if !ok {
		var err error
		if pipe, err = memory.NewPipe(p.opts); err != nil {
			t.Fatal(err)
		}
		p.byID[stream] = pipe
	}
	return pipe
}

func (p *pipes) carrier(name string) adaptertest.Carrier {
	return adaptertest.Carrier{
		Name: name,
		Open: func(t testing.TB, stream string, end delivery.End) delivery.Link {
			if end == delivery.ProducerEnd {
				return p.get(t, stream).Producer()
			}
			return p.get(t, stream).Consumer()
		},
		Cut: func(t testing.TB, stream string) {
			pipe := p.get(t, stream)
			pipe.Cut()
			pipe.Restore()
		},
		Queue:        p.opts.Queue,
		Release:      p.opts.Queue,
		MaxFrameSize: p.opts.MaxFrameSize,
	}
}

func TestConformance(t *testing.T) {
	t.Run("connection", func(t *testing.T) {
		adaptertest.Run(t, (&pipes{opts: memory.Options{MaxFrameSize: 1 << 20}}).carrier("memory"))
	})
	t.Run("queue", func(t *testing.T) {
		adaptertest.Run(t, (&pipes{opts: memory.Options{Queue: true, Capacity: 1 << 16}}).carrier("memory queue"))
	})
}
