package delivery

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of a message's headers, checked at Send. They are the protocol's:
// both ends know them, and a consumer refuses (drops, counts) a frame whose
// headers exceed them.
const (
	// MaxHeaders is the most headers a message carries.
	MaxHeaders = 64
	// MaxHeaderBytes bounds a message's headers: every name and value, in
	// bytes, added up.
	MaxHeaderBytes = 16 << 10
	// MaxHeaderName bounds one header's name, in bytes.
	MaxHeaderName = 255
)

// Header is one name and value that travels with a message: a content type,
// a key, a correlation or tenant ID, the W3C trace context.
type Header struct {
	Name, Value string
}

// Headers are a message's metadata, in the order given. Names are
// case-insensitive: the producer writes them in lower case, so a consumer
// sees "content-type" whoever sent "Content-Type". A name is 1 to
// MaxHeaderName bytes of printable ASCII other than space and ':'; a value
// is UTF-8 without control characters but tab. A message without headers
// costs nothing for them.
type Headers []Header

// Get returns the value of the first header named name (in any case), and
// whether there is one.
func (h Headers) Get(name string) (string, bool) {
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			return x.Value, true
		}
	}
	return "", false
}

// HeaderError says why headers were refused. The message was not taken. Not
// worth retrying with the same headers.
type HeaderError struct {
	Name   string // the header at fault, "" for the headers as a whole
	Reason string
}

func (e *HeaderError) Error() string {
	if e.Name == "" {
		return "delivery: message headers: " + e.Reason
	}
	return fmt.Sprintf("delivery: message header %q: %s", e.Name, e.Reason)
}

// encodeHeaders checks h and encodes it for the wire (as the value of a
// sequenced message's extHeaders, and in the durable queue), names in
// lower case: count, then for each, nameLen name valueLen value; all
// lengths varints. nil for no headers; a *HeaderError past the limits.
// It allocates the encoding only.
func encodeHeaders(h Headers) ([]byte, error) {
	if len(h) == 0 {
		return nil, nil
	}
	if len(h) > MaxHeaders {
		return nil, &HeaderError{Reason: fmt.Sprintf("%d headers; at most %d", len(h), MaxHeaders)}
	}
	total, size := 0, uvarintLen(uint64(len(h)))
	for _, x := range h {
		if err := checkHeader(x.Name, x.Value, utf8.ValidString); err != nil {
			err.Name = x.Name
			return nil, err
		}
		total += len(x.Name) + len(x.Value)
		size += uvarintLen(uint64(len(x.Name))) + len(x.Name) + uvarintLen(uint64(len(x.Value))) + len(x.Value)
	}
	if total > MaxHeaderBytes {
		return nil, &HeaderError{Reason: fmt.Sprintf("%d bytes of names and values; at most %d", total, MaxHeaderBytes)}
	}
	dst := make([]byte, 0, size)
	dst = binary.AppendUvarint(dst, uint64(len(h)))
	for _, x := range h {
		dst = binary.AppendUvarint(dst, uint64(len(x.Name)))
		dst = appendLower(dst, x.Name)
		dst = binary.AppendUvarint(dst, uint64(len(x.Value)))
		dst = append(dst, x.Value...)
	}
	return dst, nil
}

// appendLower appends name, checked ASCII, in lower case.
func appendLower(dst []byte, name string) []byte {
	i := 0
	for ; i+8 <= len(name); i += 8 {
		dst = binary.LittleEndian.AppendUint64(dst, lowerWord(load8(name, i)))
	}
	for _, c := range []byte(name[i:]) {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// checkHeader checks a name and a value, as Send is given them or as they
// come off the wire (validUTF8 is utf8.ValidString or utf8.Valid),
// allocating nothing. Headers ride every message and the consumer checks
// them on its frame reader's path, so it looks at eight bytes at a time
// (the last word overlapping the one before it rather than byte by byte),
// and at each byte only in a word that holds one out of the plain range (a
// tab, a byte outside ASCII, a bad one).
func checkHeader[S string | []byte](name, value S, validUTF8 func(S) bool) *HeaderError {
	if len(name) == 0 || len(name) > MaxHeaderName {
		return &HeaderError{Reason: fmt.Sprintf("a name is 1 to %d bytes", MaxHeaderName)}
	}
	if !plainName(name) {
		return &HeaderError{Reason: "a name is printable ASCII without spaces or ':'"}
	}
	ascii, ok := plainValue(value)
	if !ok {
		return &HeaderError{Reason: "the value holds a control character"}
	}
	if !ascii && !validUTF8(value) {
		return &HeaderError{Reason: "the value is not UTF-8"}
	}
	return nil
}

// plainName reports whether every byte of name is printable ASCII other
// than space and ':'.
func plainName[S string | []byte](name S) bool {
	n := len(name)
	if n < 8 {
		for i := range n {
			if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
				return false
			}
		}
		return true
	}
	for i := 0; ; i += 8 {
		i = min(i, n-8)
		x := load8(name, i)
		if x&msbs != 0 || less(x, '!')|(x+lsbs)&msbs|less(x^(lsbs*':'), 1) != 0 {
			return false
		}
		if i == n-8 {
			return true
		}
	}
}

// plainValue reports whether value holds no control character but tab,
// and whether it is all ASCII.
func plainValue[S string | []byte](value S) (ascii, ok bool) {
	ascii = true
	for i := 0; i < len(value); i += 8 {
		if i+8 > len(value) && i > 0 {
			i = len(value) - 8 // the last word overlaps the one before it
		}
		if i+8 <= len(value) {
			if x := load8(value, i); x&msbs == 0 && less(x, ' ')|(x+lsbs)&msbs == 0 {
				continue
			}
		}
		for _, c := range []byte(value[i:min(i+8, len(value))]) {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false, false
			}
			ascii = ascii && c < 0x80
		}
	}
	return ascii, true
}

const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// less has the high bit of a byte set where a byte of x is below n, for x
// of ASCII bytes and n at most 0x80 (any set bit is exact; which byte it
// marks may not be). (x+lsbs)&msbs, likewise, marks a DEL.
func less(x uint64, n byte) uint64 { return (x - lsbs*uint64(n)) & ^x & msbs }

// lowerWord is x, eight ASCII bytes, with A to Z in lower case.
func lowerWord(x uint64) uint64 {
	upper := (x + lsbs*(0x80-'A')) & ^(x + lsbs*(0x80-'Z'-1)) & msbs
	return x | upper>>2
}

// load8 reads s[i:i+8] as a little-endian word.
func load8[S string | []byte](s S, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// walkHeaders checks an encoding of headers: every length before it is
// used, the limits, and every name and value as Send does. It allocates
// nothing. It returns the count.
func walkHeaders(b []byte) (int, *HeaderError) {
	n, off := binary.Uvarint(b)
	if off <= 0 || n > MaxHeaders {
		return 0, &HeaderError{Reason: "a malformed or too large count"}
	}
	total := 0
	for range n {
		var parts [2][]byte
		for j := range parts {
			l, k := binary.Uvarint(b[off:])
			if k <= 0 || l > uint64(len(b)-off-k) {
				return 0, &HeaderError{Reason: "a length overruns the headers"}
			}
			off += k
			parts[j] = b[off : off+int(l)]
			off += int(l)
			total += int(l)
		}
		if err := checkHeader(parts[0], parts[1], utf8.Valid); err != nil {
			return 0, err
		}
	}
	if off != len(b) || total > MaxHeaderBytes {
		return 0, &HeaderError{Reason: "trailing bytes, or more than the limits"}
	}
	return int(n), nil
}

// decodeHeaders reads an encoding walkHeaders accepted (the frame reader
// checks every one), in one allocation for the strings and one for the
// slice.
func decodeHeaders(b []byte) Headers {
	n, off := binary.Uvarint(b)
	all := string(b) // the names and values are substrings of it
	h := make(Headers, n)
	for i := range h {
		var parts [2]string
		for j := range parts {
			l, k := binary.Uvarint(b[off:])
			off += k
			parts[j] = all[off : off+int(l)]
			off += int(l)
		}
		h[i] = Header{Name: parts[0], Value: parts[1]}
	}
	return h
}
