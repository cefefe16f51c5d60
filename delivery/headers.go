package delivery

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
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

// checkHeaders checks h against the limits and every name and value,
// allocating nothing: a *HeaderError past the limits.
func checkHeaders(h Headers) error {
	if len(h) > MaxHeaders {
		return &HeaderError{Reason: fmt.Sprintf("%d headers; at most %d", len(h), MaxHeaders)}
	}
	total := 0
	for _, x := range h {
		if err := checkHeader(x.Name, x.Value); err != nil {
			err.Name = x.Name
			return err
		}
		total += len(x.Name) + len(x.Value)
	}
	if total > MaxHeaderBytes {
		return &HeaderError{Reason: fmt.Sprintf("%d bytes of names and values; at most %d", total, MaxHeaderBytes)}
	}
	return nil
}

// checkHeader checks a name and a value, as Send is given them or as they
// come off the wire (strings over the frame's bytes), allocating nothing.
// Headers ride every message and the consumer checks them on its frame
// reader's path, so it looks at eight bytes at a time (the last word
// overlapping the one before it rather than byte by byte), and at each
// byte only in a value that holds one out of the plain range (a tab, a
// byte outside ASCII, a bad one).
func checkHeader(name, value string) *HeaderError {
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
	if !ascii && !utf8.ValidString(value) {
		return &HeaderError{Reason: "the value is not UTF-8"}
	}
	return nil
}

// plainName reports whether every byte of name is printable ASCII other
// than space and ':'.
func plainName(name string) bool {
	n := len(name)
	if n < 8 {
		for i := range n {
			if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
				return false
			}
		}
		return true
	}
	var bad uint64
	for i := 0; i < n-8; i += 8 {
		x := load8(name, i)
		bad |= x&msbs | less(x, '!') | (x+lsbs)&msbs | less(x^(lsbs*':'), 1)
	}
	x := load8(name, n-8) // overlapping the word before it
	bad |= x&msbs | less(x, '!') | (x+lsbs)&msbs | less(x^(lsbs*':'), 1)
	return bad == 0
}

// plainValue reports whether value holds no control character but tab,
// and whether it is all ASCII. Word by word it only tells plain ASCII from
// anything else; a value with anything else (a tab, UTF-8, a bad byte) is
// then read byte by byte.
func plainValue(value string) (ascii, ok bool) {
	n := len(value)
	if n >= 8 {
		var other uint64
		for i := 0; i < n-8; i += 8 {
			x := load8(value, i)
			other |= x&msbs | less(x, ' ') | (x+lsbs)&msbs
		}
		x := load8(value, n-8) // overlapping the word before it
		if other |= x&msbs | less(x, ' ') | (x+lsbs)&msbs; other == 0 {
			return true, true
		}
	}
	ascii = true
	for i := range n {
		c := value[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false, false
		}
		ascii = ascii && c < 0x80
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

// load8 reads s[i:i+8] as a little-endian word, in one load after one
// bounds check (indexing the string byte by byte checks each byte).
func load8(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:i+8]), 8))
}
