package workload

import (
	"bytes"
	"encoding/binary"
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
// itself, eight at a time: the bench parses every message it receives, and
// strconv's general parsing was a tenth of a tcp run's CPU, a digit at a
// time still 60 ns a message.
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

// decimal reads the non-negative decimal of at most 19 digits that fits an
// int64 at the start of b, up to a space or b's end, and returns what
// follows it (the space first).
func decimal(b []byte) (int64, []byte, bool) {
	k := bytes.IndexByte(b, ' ')
	if k < 0 {
		k = len(b)
	}
	if k == 0 || k > 19 {
		return 0, nil, false
	}
	// Below 10^19, so no step overflows a uint64: two groups of eight
	// digits make at most 16, three more at most 19.
	var n uint64
	d := b[:k]
	for len(d) >= 8 {
		v, ok := eightDigits(d)
		if !ok {
			return 0, nil, false
		}
		n = n*100_000_000 + v
		d = d[8:]
	}
	for _, c := range d {
		c -= '0'
		if c > 9 {
			return 0, nil, false
		}
		n = n*10 + uint64(c)
	}
	if n > math.MaxInt64 {
		return 0, nil, false
	}
	return int64(n), b[k:], true
}

// eightDigits reads the decimal b[:8], if those are eight ASCII digits,
// with a few operations on the eight bytes as one word.
func eightDigits(b []byte) (uint64, bool) {
	x := binary.LittleEndian.Uint64(b)
	// Each byte's high half is 3 (0x30 to 0x3f) and adding 6 keeps it
	// there (0x30 to 0x39).
	if x&0xf0f0f0f0f0f0f0f0|(x+0x0606060606060606)&0xf0f0f0f0f0f0f0f0>>4 != 0x3333333333333333 {
		return 0, false
	}
	// Pairs of digits, then groups of four, then eight; the first digit is
	// the lowest byte.
	x = (x & 0x0f0f0f0f0f0f0f0f) * 2561 >> 8
	x = (x & 0x00ff00ff00ff00ff) * 6553601 >> 16
	return (x & 0x0000ffff0000ffff) * 42949672960001 >> 32, true
}
