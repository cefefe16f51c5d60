package workload

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// Message builds message i: "<number> <unix nanoseconds> " padded with 'x'
// to size bytes (longer, if size cannot hold the number and the time), so
// that a reader can tell what is missing, what came twice and how long it
// took.
func Message(i, size int, at time.Time) []byte {
	return AppendMessage(make([]byte, 0, max(size, 32)), i, size, at)
}

// AppendMessage appends message i to dst, as Message makes it.
func AppendMessage(b []byte, i, size int, at time.Time) []byte {
	start := len(b)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, at.UnixNano(), 10)
	b = append(b, ' ')
	for n := len(b) - start; n < size; n = len(b) - start { // a copy per padding's length, not a byte at a time
		b = append(b, padding[:min(len(padding), size-n)]...)
	}
	return b
}

// Slab hands out the buffers of Messages from larger allocations: a
// sender that makes a message for every send (and keeps each until it is
// confirmed) allocates once per slab, not per message. Each buffer is
// capped at its message's end, so none grows into its neighbour. A
// message keeps its slab alive; the zero Slab is ready to use.
type Slab struct{ buf []byte }

// slabBytes is the size of a slab: a message of this size or more gets
// an allocation of its own.
const slabBytes = 64 << 10

// Message makes message i as Message does, in the slab.
func (s *Slab) Message(i, size int, at time.Time) []byte {
	need := max(size, 32)
	if need >= slabBytes {
		return Message(i, size, at)
	}
	if cap(s.buf)-len(s.buf) < need {
		s.buf = make([]byte, 0, slabBytes)
	}
	start := len(s.buf)
	m := AppendMessage(s.buf[start:start:start+need], i, size, at)
	if len(m) > need {
		return m // longer than its room: append moved it out of the slab
	}
	s.buf = s.buf[:start+len(m)]
	return m[:len(m):len(m)]
}

// padding fills messages up to their size.
var padding = bytes.Repeat([]byte{'x'}, 64<<10)

// Parse reads the number and time of a Message. It reads the digits
// itself, in one pass: the bench parses every message it receives, and
// strconv's general parsing was a tenth of a tcp run's CPU.
func Parse(b []byte) (i int, at time.Time, ok bool) {
	n, rest, ok1 := decimal(b)
	if !ok1 || len(rest) == 0 {
		return 0, time.Time{}, false // a number ends at a space
	}
	ns, _, ok2 := decimal(rest[1:]) // the padding follows, or nothing
	if !ok2 {
		return 0, time.Time{}, false
	}
	return int(n), time.Unix(0, ns), true
}

// decimal reads the non-negative decimal that fits an int64 at the start
// of b, up to a space or b's end, and returns what follows it (the space
// first).
func decimal(b []byte) (int64, []byte, bool) {
	var n int64
	k := 0
	for ; k < len(b) && b[k] != ' '; k++ {
		d := int64(b[k]) - '0'
		if d < 0 || d > 9 || n > (math.MaxInt64-d)/10 {
			return 0, nil, false
		}
		n = n*10 + d
	}
	return n, b[k:], k > 0
}
