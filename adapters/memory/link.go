package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Link is one end of a Pipe: a delivery.Link.
type Link struct {
	pipe       *Pipe
	out, in    *direction
	closed     bool            // guarded by pipe.mu
	unreleased map[uint64]item // Queue pipes: received, not yet released; guarded by pipe.mu
}

var (
	_ delivery.Link             = (*Link)(nil)
	_ delivery.FrameSizeLimiter = (*Link)(nil)
)

// Send queues a copy of frame for the other end, applying the pipe's faults.
// It blocks while the other direction holds Capacity frames. A frame over
// MaxFrameSize is refused with a *delivery.FrameTooLargeError.
func (l *Link) Send(ctx context.Context, frame []byte) error {
	p := l.pipe
	if max := p.opts.MaxFrameSize; max > 0 && len(frame) > max {
		return &delivery.FrameTooLargeError{Carrier: "memory", Size: len(frame), Limit: max}
	}
	data := slices.Clone(frame)
	p.mu.Lock()
	for {
		switch {
		case l.closed:
			p.mu.Unlock()
			return fmt.Errorf("memory: send: %w", delivery.ErrLinkClosed)
		case p.cut:
			p.stats.Sent++
			p.stats.Dropped++
			p.broadcast()
			p.mu.Unlock()
			return ErrDisconnected
		case l.out.len() < p.opts.Capacity:
			p.enqueueLocked(l.out, data)
			p.mu.Unlock()
			return nil
		}
		changed := p.watch()
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
}

// Receive returns the next frame for this end, waiting for it.
func (l *Link) Receive(ctx context.Context) (delivery.Frame, error) {
	p := l.pipe
	p.mu.Lock()
	for {
		var wait <-chan time.Time
		switch {
		case l.closed:
			p.mu.Unlock()
			return delivery.Frame{}, fmt.Errorf("memory: receive: %w", delivery.ErrLinkClosed)
		case p.cut:
		case l.in.len() > 0:
			it := l.in.queue[l.in.head]
			if !it.readyAt.IsZero() { // only a pipe with a delay sets it: reading the clock per frame is a tenth of the raw pipe's cost
				if d := time.Until(it.readyAt); d > 0 {
					wait = time.After(d)
					break
				}
			}
			l.in.pop()
			f := l.deliverLocked(it)
			p.broadcast() // room for a blocked Send
			p.mu.Unlock()
			return f, nil
		case l.in.held != nil:
			// Nothing came to release the frame held back: deliver it late
			// rather than never.
			it := *l.in.held
			l.in.held = nil
			f := l.deliverLocked(it)
			p.broadcast()
			p.mu.Unlock()
			return f, nil
		}
		changed := p.watch()
		p.mu.Unlock()
		select {
		case <-changed:
		case <-wait:
		case <-ctx.Done():
			return delivery.Frame{}, ctx.Err()
		}
		p.mu.Lock()
	}
}

func (l *Link) deliverLocked(it item) delivery.Frame {
	p := l.pipe
	p.stats.Delivered++
	f := delivery.Frame{Data: it.data}
	if p.opts.Queue {
		l.unreleased[it.id] = it
		f.Release = func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if _, ok := l.unreleased[it.id]; ok {
				delete(l.unreleased, it.id)
				p.stats.Released++
				p.broadcast()
			}
		}
	}
	return f
}

// requeueLocked puts the frames this end received and did not release back
// at the front of its queue, oldest first; pipe.mu must be held.
func (l *Link) requeueLocked() {
	if len(l.unreleased) == 0 {
		return
	}
	back := make([]item, 0, len(l.unreleased))
	for _, it := range l.unreleased {
		it.readyAt = time.Time{}
		back = append(back, it)
	}
	slices.SortFunc(back, func(a, b item) int { return cmp.Compare(a.id, b.id) })
	clear(l.unreleased)
	l.in.queue, l.in.head = append(back, l.in.queue[l.in.head:]...), 0
	l.pipe.stats.Redelivered += uint64(len(back))
}

// Unreleased is the number of frames this end received and has not
// released (always 0 on a pipe without Queue).
func (l *Link) Unreleased() int {
	l.pipe.mu.Lock()
	defer l.pipe.mu.Unlock()
	return len(l.unreleased)
}

// MaxFrameSize reports the pipe's frame limit (0: none).
func (l *Link) MaxFrameSize() int { return l.pipe.opts.MaxFrameSize }

// Close detaches the end. On a Queue pipe, frames it received and did not
// release go back to the queue for the next end. Idempotent.
func (l *Link) Close() error {
	p := l.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if p.opts.Queue {
		l.requeueLocked()
	} else {
		// A connection that closes loses what was in flight towards it.
		p.stats.Dropped += uint64(l.in.len())
		l.in.queue, l.in.head = nil, 0
	}
	p.broadcast()
	return nil
}
