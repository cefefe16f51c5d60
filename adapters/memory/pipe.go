package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// ErrDisconnected is returned by Send while the pipe is cut. The frame is
// lost; the protocol resends what it carried. Worth retrying after Restore.
var ErrDisconnected = errors.New("memory: pipe disconnected")

// Faults say what a Pipe does to the frames it carries. Probabilities are
// per frame, from 0 to 1; each direction draws from its own generator seeded
// from Seed, so the n-th frame sent in a direction meets the same fate in
// every run with the same seed (what the controllers send, and when, still
// depends on scheduling).
type Faults struct {
	Seed      uint64
	Loss      float64       // the frame is dropped
	Duplicate float64       // the frame is delivered twice
	Reorder   float64       // the frame is held back and delivered after the next one
	Delay     time.Duration // each frame waits up to this long (uniformly) before it can be received; order is kept
}

// Options configure a Pipe. The zero value is a perfect, unbounded-size,
// queue-less pipe.
type Options struct {
	Faults

	// Capacity is how many frames may wait in each direction before Send
	// blocks. Default 1024.
	Capacity int

	// MaxFrameSize makes Send refuse larger frames with a
	// *delivery.FrameTooLargeError, and is reported to the controllers
	// (delivery.FrameSizeLimiter). 0: no limit.
	MaxFrameSize int

	// Queue makes the pipe behave like a broker's queue rather than a
	// connection: frames wait for an end that is not attached yet; received
	// frames carry a Release, and those an end did not release when it closed
	// (or when the pipe was cut) are delivered again to the next end.
	// Without it, frames sent while no end receives are lost, like on core
	// NATS or a TCP connection that broke.
	Queue bool
}

func (opts Options) withDefaults() (Options, error) {
	f := opts.Faults
	for name, p := range map[string]float64{"Loss": f.Loss, "Duplicate": f.Duplicate, "Reorder": f.Reorder} {
		if p < 0 || p > 1 {
			return opts, fmt.Errorf("memory: Faults.%s=%v: a probability is from 0 to 1", name, p)
		}
	}
	if f.Delay < 0 || opts.Capacity < 0 || opts.MaxFrameSize < 0 {
		return opts, errors.New("memory: Delay, Capacity and MaxFrameSize must not be negative")
	}
	if opts.Capacity == 0 {
		opts.Capacity = 1024
	}
	return opts, nil
}

// Stats counts what a pipe did, over both directions.
type Stats struct {
	Sent        uint64 // frames given to Send
	Delivered   uint64 // frames returned by Receive (redeliveries and duplicates included)
	Dropped     uint64 // frames lost: by Loss, by a cut, or for want of a receiver
	Duplicated  uint64
	Reordered   uint64
	Released    uint64
	Redelivered uint64
	Cuts        uint64
}

// Pipe carries the frames of one stream between a producer end and a
// consumer end, injecting the faults of its Options. An end can be closed
// and replaced to restart that side. A Pipe starts no goroutines.
type Pipe struct {
	opts Options

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on a change once a waiter took it (watch)
	watched    bool          // someone waits on changed
	toConsumer *direction
	toProducer *direction
	producer   *Link
	consumer   *Link
	cut        bool
	nextID     uint64
	stats      Stats
}

// direction is the queue of frames one way: queue[head:]. Receiving
// moves head rather than reslicing, so the queue's storage is reused
// instead of reallocated every few frames.
type direction struct {
	rng    *rand.Rand
	queue  []item
	head   int
	held   *item // held back for reordering
	lastAt time.Time
}

func (d *direction) len() int { return len(d.queue) - d.head }

// pop drops the frame at the front.
func (d *direction) pop() {
	d.queue[d.head] = item{}
	d.head++
	if d.head == len(d.queue) {
		d.queue, d.head = d.queue[:0], 0
	}
}

// push appends its, sliding the queue down first when half its storage
// was received.
func (d *direction) push(its ...item) {
	if len(d.queue)+len(its) > cap(d.queue) && d.head > 0 && d.head >= len(d.queue)/2 {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue, d.head = d.queue[:n], 0
	}
	d.queue = append(d.queue, its...)
}

type item struct {
	id      uint64
	data    []byte
	readyAt time.Time
}

// NewPipe returns a pipe with no ends attached.
func NewPipe(opts Options) (*Pipe, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	f := opts.Faults
	return &Pipe{
		opts:       opts,
		changed:    make(chan struct{}),
		toConsumer: &direction{rng: rand.New(rand.NewPCG(f.Seed, 1))},
		toProducer: &direction{rng: rand.New(rand.NewPCG(f.Seed, 2))},
	}, nil
}

// Producer attaches a new producer end, closing the previous one.
func (p *Pipe) Producer() *Link { return p.attach(&p.producer, p.toConsumer, p.toProducer) }

// Consumer attaches a new consumer end, closing the previous one.
func (p *Pipe) Consumer() *Link { return p.attach(&p.consumer, p.toProducer, p.toConsumer) }

func (p *Pipe) attach(slot **Link, out, in *direction) *Link {
	p.mu.Lock()
	old := *slot
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	l := &Link{pipe: p, out: out, in: in, unreleased: map[uint64]item{}}
	p.mu.Lock()
	*slot = l
	p.broadcast()
	p.mu.Unlock()
	return l
}

// Cut breaks the pipe until Restore: Send fails with ErrDisconnected and
// Receive waits. A queue-less pipe loses every frame in flight; a Queue pipe
// keeps its queued frames and redelivers the unreleased ones, as a broker
// does when a client's connection drops.
func (p *Pipe) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.stats.Cuts++
	if p.opts.Queue {
		for _, l := range []*Link{p.producer, p.consumer} {
			if l != nil {
				l.requeueLocked()
			}
		}
	} else {
		for _, d := range []*direction{p.toConsumer, p.toProducer} {
			p.stats.Dropped += uint64(d.len())
			d.queue, d.head = nil, 0
			if d.held != nil {
				p.stats.Dropped++
				d.held = nil
			}
		}
	}
	p.broadcast()
}

// Restore ends a cut.
func (p *Pipe) Restore() {
	p.mu.Lock()
	p.cut = false
	p.broadcast()
	p.mu.Unlock()
}

// Stats returns the pipe's counters.
func (p *Pipe) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// WaitFor waits until cond holds, checking it after every change to the
// pipe (a frame sent, received or released, a cut), or until ctx ends. cond
// gets a snapshot of the counters and may call the pipe's and ends' methods.
func (p *Pipe) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	for {
		p.mu.Lock()
		stats, changed := p.stats, p.watch()
		p.mu.Unlock()
		if cond(stats) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("memory: waiting for a pipe condition: %w", ctx.Err())
		}
	}
}

// Close closes both ends. Idempotent.
func (p *Pipe) Close() error {
	p.mu.Lock()
	ends := []*Link{p.producer, p.consumer}
	p.mu.Unlock()
	for _, l := range ends {
		if l != nil {
			l.Close()
		}
	}
	return nil
}

// watch returns the channel the next change closes; p.mu must be held.
func (p *Pipe) watch() <-chan struct{} {
	p.watched = true
	return p.changed
}

// broadcast wakes every waiter; p.mu must be held. With none, it has
// nothing to do: a channel made per frame sent or received was a tenth of
// the pipe's CPU.
func (p *Pipe) broadcast() {
	if !p.watched {
		return
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.watched = false
}

// receiverAttached reports whether an open end receives from d; p.mu must
// be held.
func (p *Pipe) receiverAttached(d *direction) bool {
	end := p.consumer
	if d == p.toProducer {
		end = p.producer
	}
	return end != nil && !end.closed
}

// Inject puts frame in the way of the end to, as a stranger with access to
// the carrier would (a client publishing to a broker's queue): behind what
// is queued for that end, with the pipe's faults, whatever its own ends do.
// The conformance suite's hostile tests play strangers with it.
func (p *Pipe) Inject(to delivery.End, frame []byte) {
	d := p.toConsumer
	if to == delivery.ProducerEnd {
		d = p.toProducer
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enqueueLocked(d, slices.Clone(frame))
}

// enqueueLocked applies the faults to a frame sent into d; p.mu must be
// held.
func (p *Pipe) enqueueLocked(d *direction, data []byte) {
	defer p.broadcast()
	p.stats.Sent++
	if !p.opts.Queue && !p.receiverAttached(d) {
		p.stats.Dropped++
		return
	}
	f := p.opts.Faults
	if f.Loss > 0 && d.rng.Float64() < f.Loss {
		p.stats.Dropped++
		return
	}
	copies := 1
	if f.Duplicate > 0 && d.rng.Float64() < f.Duplicate {
		copies = 2
		p.stats.Duplicated++
	}
	var both [2]item // no allocation per frame
	its := both[:copies]
	for i := range its {
		its[i] = p.newItem(d, data)
	}
	justHeld := false
	if f.Reorder > 0 && d.rng.Float64() < f.Reorder && d.held == nil {
		held := its[0]
		d.held, its, justHeld = &held, its[1:], true
		p.stats.Reordered++
	}
	d.push(its...)
	if d.held != nil && !justHeld {
		// The frame held back goes behind the one just sent.
		d.push(*d.held)
		d.held = nil
	}
}

func (p *Pipe) newItem(d *direction, data []byte) item {
	p.nextID++
	it := item{id: p.nextID, data: data}
	if delay := p.opts.Delay; delay > 0 {
		it.readyAt = time.Now().Add(time.Duration(d.rng.Int64N(int64(delay))))
		if it.readyAt.Before(d.lastAt) {
			it.readyAt = d.lastAt // a delay never reorders
		}
		d.lastAt = it.readyAt
	}
	return it
}
