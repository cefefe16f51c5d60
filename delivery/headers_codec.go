package delivery

import (
	"encoding/binary"
	"slices"
	"unsafe"
)

// The encoding of a message's headers, the value of a sequenced message's
// extHeaders and what the durable queue keeps: the count, then for each
// header nameLen name valueLen value, all lengths varints, names in lower
// case. Names and values are nearly always under 128 bytes, so their
// lengths take one byte, and the codec reads and writes those inline.

// appendHeaders appends the encoding of h, which checkHeaders accepted, to
// dst.
func appendHeaders(dst []byte, h Headers) []byte {
	dst = appendLen(dst, len(h))
	for _, x := range h {
		dst = appendLen(dst, len(x.Name))
		dst = appendLower(dst, x.Name)
		dst = appendLen(dst, len(x.Value))
		dst = append(dst, x.Value...)
	}
	return dst
}

// headersLen is the length of the encoding of h, which checkHeaders
// accepted; 0 for no headers.
func headersLen(h Headers) int {
	if len(h) == 0 {
		return 0
	}
	n := uvarintLen(uint64(len(h)))
	for _, x := range h {
		n += uvarintLen(uint64(len(x.Name))) + len(x.Name) + uvarintLen(uint64(len(x.Value))) + len(x.Value)
	}
	return n
}

// headerBlock is a message's headers with the length of their encoding,
// as a frame is written: the producer keeps the headers given to Send (it
// encodes them into each frame that carries them, so that they cost no
// allocation of their own), and sizes them once a frame.
type headerBlock struct {
	h   Headers
	len int
}

func blockOf(h Headers) headerBlock { return headerBlock{h: h, len: headersLen(h)} }

// storeHeaders is the encoding of h, which checkHeaders accepted, for a
// durable queue; nil for none.
func storeHeaders(h Headers) []byte {
	if len(h) == 0 {
		return nil
	}
	return appendHeaders(make([]byte, 0, headersLen(h)), h)
}

// storedHeaders reads headers a durable queue kept (encoded, as a frame
// carries them), checked as a frame's are: the strings are over b's bytes,
// which the producer then keeps. nil for none.
func storedHeaders(b []byte, arena *[]Header) (Headers, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if _, err := walkHeaders(b); err != nil {
		return nil, err
	}
	return decodeHeaders(b, arena), nil
}

// encodeHeaders checks h and encodes it in one allocation; nil for no
// headers.
func encodeHeaders(h Headers) ([]byte, error) {
	if err := checkHeaders(h); err != nil {
		return nil, err
	}
	return storeHeaders(h), nil
}

// appendLower appends s, checked ASCII, in lower case: a word at a time,
// read from s and written once, the last word overlapping the one before
// it (lowering twice changes nothing). Lowering the bytes after appending
// them read back words just written byte-wise, which the store buffer
// cannot forward: that read was the codec's hottest line.
func appendLower(dst []byte, s string) []byte {
	n := len(s)
	if n < 8 {
		for i := range n {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	at := len(dst)
	dst = slices.Grow(dst, n)[:at+n]
	b := dst[at:]
	for i := 0; i < n-8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], lowerWord(load8(s, i)))
	}
	binary.LittleEndian.PutUint64(b[n-8:], lowerWord(load8(s, n-8)))
	return dst
}

// appendLen appends n as a varint.
func appendLen(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	return binary.AppendUvarint(dst, uint64(n))
}

// readLen reads the varint at b[off:] and returns it and the offset past
// it; an offset of -1 when it is malformed or overruns b.
func readLen(b []byte, off int) (uint64, int) {
	if off < len(b) && b[off] < 0x80 {
		return uint64(b[off]), off + 1
	}
	if off >= len(b) {
		return 0, -1
	}
	v, k := binary.Uvarint(b[off:])
	if k <= 0 {
		return 0, -1
	}
	return v, off + k
}

// walkHeaders checks an encoding of headers: every length before it is
// used, the limits, and every name and value as Send does. It allocates
// nothing. It returns the count.
func walkHeaders(b []byte) (int, *HeaderError) {
	n, off := readLen(b, 0)
	if off < 0 || n > MaxHeaders {
		return 0, &HeaderError{Reason: "a malformed or too large count"}
	}
	total := 0
	for range n {
		var parts [2]string
		for j := range parts {
			var l uint64
			if l, off = readLen(b, off); off < 0 || l > uint64(len(b)-off) {
				return 0, &HeaderError{Reason: "a length overruns the headers"}
			}
			parts[j] = bytesString(b[off : off+int(l)])
			off += int(l)
			total += int(l)
		}
		if err := checkHeader(parts[0], parts[1]); err != nil {
			return 0, err
		}
	}
	if off != len(b) || total > MaxHeaderBytes {
		return 0, &HeaderError{Reason: "trailing bytes, or more than the limits"}
	}
	return int(n), nil
}

// decodeHeaders reads an encoding walkHeaders accepted (the frame reader
// checks every one). It copies nothing: the names and values are strings
// over b's bytes, which must never change (a received frame's are the
// consumer's, and nothing writes to them), and the slice is carved from
// *arena, a new one of arenaHeaders allocated when it has no room, so that
// the headers of many messages cost one allocation.
func decodeHeaders(b []byte, arena *[]Header) Headers {
	n, off := readLen(b, 0)
	a := *arena
	if cap(a)-len(a) < int(n) {
		a = make([]Header, 0, max(int(n), arenaHeaders))
	}
	start, end := len(a), len(a)+int(n)
	a = a[:end]
	for i := start; i < end; i++ {
		var l uint64
		l, off = readLen(b, off)
		a[i].Name = bytesString(b[off : off+int(l)])
		off += int(l)
		l, off = readLen(b, off)
		a[i].Value = bytesString(b[off : off+int(l)])
		off += int(l)
	}
	*arena = a
	return a[start:end:end]
}

// arenaHeaders is how many headers decodeHeaders allocates room for at a
// time: 4 KiB, a few dozen messages' worth, that a delivery kept long
// keeps alive (as its payload keeps its frame).
const arenaHeaders = 128

// bytesString is b's bytes as a string, without a copy: b must never
// change.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return "" // an empty value may end a frame, where no byte is to point at
	}
	return unsafe.String(&b[0], len(b))
}
