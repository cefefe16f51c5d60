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

// canonical checks h and returns it with lower-case names, ready for the
// wire, or a *HeaderError.
func (h Headers) canonical() (Headers, error) {
	if len(h) > MaxHeaders {
		return nil, &HeaderError{Reason: fmt.Sprintf("%d headers; at most %d", len(h), MaxHeaders)}
	}
	total := 0
	out := make(Headers, len(h))
	for i, x := range h {
		if err := checkHeader(x); err != nil {
			return nil, err
		}
		total += len(x.Name) + len(x.Value)
		out[i] = Header{Name: strings.ToLower(x.Name), Value: x.Value}
	}
	if total > MaxHeaderBytes {
		return nil, &HeaderError{Reason: fmt.Sprintf("%d bytes of names and values; at most %d", total, MaxHeaderBytes)}
	}
	return out, nil
}

func checkHeader(x Header) *HeaderError {
	if err := checkHeaderBytes([]byte(x.Name), []byte(x.Value)); err != nil {
		err.Name = x.Name
		return err
	}
	return nil
}

// checkHeaderBytes checks a name and a value as they come off the wire,
// allocating nothing.
func checkHeaderBytes(name, value []byte) *HeaderError {
	if len(name) == 0 || len(name) > MaxHeaderName {
		return &HeaderError{Reason: fmt.Sprintf("a name is 1 to %d bytes", MaxHeaderName)}
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return &HeaderError{Reason: "a name is printable ASCII without spaces or ':'"}
		}
	}
	if !utf8.Valid(value) {
		return &HeaderError{Reason: "the value is not UTF-8"}
	}
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return &HeaderError{Reason: "the value holds a control character"}
		}
	}
	return nil
}

// The headers' encoding, as the value of a sequenced message's extHeaders
// (and in the durable queue): count, then for each, nameLen name valueLen
// value; all lengths varints.
func appendHeaders(dst []byte, h Headers) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(h)))
	for _, x := range h {
		dst = binary.AppendUvarint(dst, uint64(len(x.Name)))
		dst = append(dst, x.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(x.Value)))
		dst = append(dst, x.Value...)
	}
	return dst
}

// walkHeaders checks an encoding of headers: every length before it is
// used, the limits, and every name and value as Send does; each is handed
// to f, as sub-slices of b (f may be nil: a check that allocates nothing).
func walkHeaders(b []byte, f func(name, value []byte)) *HeaderError {
	n, off := binary.Uvarint(b)
	if off <= 0 || n > MaxHeaders {
		return &HeaderError{Reason: "a malformed or too large count"}
	}
	total := 0
	for range n {
		var parts [2][]byte
		for j := range parts {
			l, k := binary.Uvarint(b[off:])
			if k <= 0 || l > uint64(len(b)-off-k) {
				return &HeaderError{Reason: "a length overruns the headers"}
			}
			off += k
			parts[j] = b[off : off+int(l)]
			off += int(l)
			total += int(l)
		}
		if err := checkHeaderBytes(parts[0], parts[1]); err != nil {
			return err
		}
		if f != nil {
			f(parts[0], parts[1])
		}
	}
	if off != len(b) || total > MaxHeaderBytes {
		return &HeaderError{Reason: "trailing bytes, or more than the limits"}
	}
	return nil
}

// decodeHeaders reads an encoding walkHeaders accepts.
func decodeHeaders(b []byte) (Headers, error) {
	var h Headers
	if err := walkHeaders(b, func(name, value []byte) {
		h = append(h, Header{Name: string(name), Value: string(value)})
	}); err != nil {
		return nil, err
	}
	return h, nil
}
