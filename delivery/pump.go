package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// inbound is a frame the reader has checked: a controller walks its
// messages without errors.
type inbound struct {
	hdr     frameHeader
	data    []byte
	off     int // offset of the first message
	release func()
}

func (f inbound) messages() frameReader {
	return frameReader{b: f.data, off: f.off, kind: f.hdr.kind, checked: true} // the reader ran parseFrame
}

func (f inbound) doRelease() {
	if f.release != nil {
		f.release()
	}
}

// linkCounters are updated by the pump's goroutines and read by Stats.
type linkCounters struct {
	framesSent     atomic.Uint64
	framesReceived atomic.Uint64
	sendErrors     atomic.Uint64
	badFrames      atomic.Uint64
}

// pump owns the two goroutines between a controller and its link. The
// reader receives frames, checks them, drops bad ones (releasing them, so a
// broker does not redeliver poison) and passes the rest to the controller;
// the writer sends the frames the controller hands it and returns their
// buffers. Neither touches protocol state.
type pump struct {
	link     Link
	expect   frameKind
	log      *slog.Logger
	counters *linkCounters

	badFrames throttle // the warning about them: a peer may send many

	in    chan inbound // reader -> controller
	out   chan []byte  // controller -> writer; unbuffered, so a frame waits in the outbox while the writer is busy
	spare chan []byte  // writer -> controller: sent frames' buffers, for the outbox to reuse
	fatal chan error   // the link failed for good
	// writerDone is closed when the writer returns, so a graceful stop can
	// wait for the last frames to go out while the reader still runs.
	writerDone chan struct{}
	wg         sync.WaitGroup
}

func newPump(link Link, expect frameKind, log *slog.Logger, counters *linkCounters) *pump {
	return &pump{
		link: link, expect: expect, log: log, counters: counters,
		in:         make(chan inbound, 16),
		out:        make(chan []byte),
		spare:      make(chan []byte, spareFrames),
		fatal:      make(chan error, 2),
		writerDone: make(chan struct{}),
	}
}

// start runs the reader until ctx ends and the writer until ctx ends or out
// is closed.
func (p *pump) start(ctx context.Context) {
	p.wg.Add(2)
	go p.read(ctx)
	go p.write(ctx)
}

func (p *pump) wait() { p.wg.Wait() }

// flush hands the writer every frame left in o, then lets the writer finish
// the last Send and return. It gives up when quit is closed, ctx ends, the
// link fails, or the link reports that it cannot reach the other end (a
// Send would wait for a peer that may never come back); it reports whether
// everything went out.
func (p *pump) flush(ctx context.Context, o *outbox, quit <-chan struct{}) bool {
	status, _ := p.link.(StatusReporter)
	var poll <-chan time.Time
	if status != nil {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	}
	unreachable := func() bool { return !status.Status().Connected }
	for f := o.next(); f != nil; f = o.next() {
		select {
		case p.out <- f:
			o.taken()
			continue
		case <-poll:
			if !unreachable() {
				continue
			}
		case <-quit:
		case <-ctx.Done():
		case <-p.writerDone:
		}
		return false
	}
	close(p.out)
	for {
		select {
		case <-p.writerDone:
			return true
		case <-poll:
			if !unreachable() {
				continue
			}
		case <-quit:
		case <-ctx.Done():
		}
		return false
	}
}

func (p *pump) read(ctx context.Context) {
	defer p.wg.Done()
	for {
		f, err := p.link.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.fatal <- err
			}
			return
		}
		p.counters.framesReceived.Add(1)
		hdr, off, err := parseFrame(f.Data)
		if err == nil && hdr.kind != p.expect {
			err = &FrameError{Offset: 2, Reason: "a " + hdr.kind.String() + " frame where " + p.expect.String() + " frames are expected"}
		}
		if err != nil {
			p.counters.badFrames.Add(1)
			if ok, since := p.badFrames.allow(time.Now()); ok {
				p.log.Warn("dropping bad frame", "err", err, "bytes", len(f.Data), "dropped_since_last_log", since)
			}
			if f.Release != nil {
				f.Release()
			}
			continue
		}
		select {
		case p.in <- inbound{hdr: hdr, data: f.Data, off: off, release: f.Release}:
		case <-ctx.Done():
			return
		}
	}
}

// spareFrames is how many sent frames' buffers a pump keeps for its
// outbox: one being filled while one is sent, and some slack.
const spareFrames = 4

// recycle hands a sent frame's buffer back to the outbox, or, when the
// outbox has spares enough, to the pool.
func (p *pump) recycle(f []byte) {
	if !worthKeeping(f) {
		return
	}
	select {
	case p.spare <- f:
	default:
		putFrameBuf(f)
	}
}

func (p *pump) write(ctx context.Context) {
	defer p.wg.Done()
	defer close(p.writerDone)
	failing := false // log the first failure of a run of them, not each
	for {
		select {
		case f, ok := <-p.out:
			if !ok {
				return
			}
			err := p.link.Send(ctx, f)
			p.recycle(f)
			switch {
			case err == nil:
				p.counters.framesSent.Add(1)
				if failing {
					failing = false
					p.log.Info("link sends again")
				}
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrLinkClosed):
				p.fatal <- err
				return
			default:
				// The frame is lost; the protocol resends what it carried.
				p.counters.sendErrors.Add(1)
				if !failing {
					failing = true
					p.log.Warn("link send failed; the protocol will resend", "err", err)
				}
			}
		case <-ctx.Done():
			return
		}
	}
}
