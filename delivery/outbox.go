package delivery

import "sync"

// outbox collects the messages a controller emits into frames of at most max
// bytes. The last frame stays open for more messages until the writer takes
// it, so messages emitted while the writer is busy share a frame: the busier
// the link, the larger the batches, and an idle link sends at once.
type outbox struct {
	frames  [][]byte
	head    int
	open    bool // the last frame takes more messages
	openHdr frameHeader
	max     int
	spare   <-chan []byte // buffers the writer has done with; nil: the pool's only
}

// reserve returns the frame that the next n bytes of messages under header h
// go into, starting a new frame if the open one has another header or no
// room. The caller appends to the returned slice in place.
func (o *outbox) reserve(h frameHeader, n int) *[]byte {
	if o.open {
		last := &o.frames[len(o.frames)-1]
		if o.openHdr == h && len(*last)+n <= o.max {
			return last
		}
	}
	o.frames = append(o.frames, appendFrameHeader(o.newFrame(min(o.max, frameHeaderMax+n)), h))
	o.open, o.openHdr = true, h
	return &o.frames[len(o.frames)-1]
}

// newFrame returns an empty buffer that holds at least size bytes: one the
// writer sent before, if it has one back, which has grown to the size
// frames take under load, so that a frame is neither allocated nor copied
// as it grows.
func (o *outbox) newFrame(size int) []byte {
	select {
	case b := <-o.spare:
		if cap(b) >= size {
			return b[:0]
		}
		putFrameBuf(b)
	default:
	}
	return getFrameBuf(size)
}

// backlog is the number of frames waiting for the writer, the open one
// included.
func (o *outbox) backlog() int { return len(o.frames) - o.head }

// next returns the oldest frame not yet handed to the writer, or nil.
func (o *outbox) next() []byte {
	if o.head == len(o.frames) {
		return nil
	}
	return o.frames[o.head]
}

// taken records that the writer took the frame next returned.
func (o *outbox) taken() {
	o.frames[o.head] = nil
	o.head++
	if o.head == len(o.frames) {
		o.frames, o.head, o.open = o.frames[:0], 0, false
	}
}

// Frames the writer has sent are reused: first through the pump's own
// spares (see pump.recycle), then through a pool. The pool alone did not
// keep the steady state free of allocation: the collector, which a busy
// stream runs every few milliseconds, empties it, and every frame then
// started at 4 KiB and was copied each time it doubled.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// getFrameBuf returns an empty buffer that holds at least size bytes
// without growing: a large frame is not copied over and over as it fills.
func getFrameBuf(size int) []byte {
	b := (*frameBufs.Get().(*[]byte))[:0]
	if cap(b) < size {
		return make([]byte, 0, size)
	}
	return b
}

func putFrameBuf(b []byte) {
	if worthKeeping(b) {
		frameBufs.Put(&b)
	}
}

// worthKeeping reports whether a sent frame's buffer is worth reusing: an
// outsized one is not.
func worthKeeping(b []byte) bool { return cap(b) <= 4*DefaultMaxFrameSize }
