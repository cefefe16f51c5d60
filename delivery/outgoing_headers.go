package delivery

// outHeaders are a message's headers as a producer keeps them until the
// message is confirmed: as given to SendMessage, checked, and encoded only
// as each frame that carries them is written, so that headers cost a
// message no allocation and no copy of their own; or already encoded
// (restored from a durable queue). The zero value is no headers.
type outHeaders struct {
	given   Headers // nil when encoded is set
	encoded []byte
	size    int // the encoding's length; 0: no headers
}

// givenHeaders checks h for SendMessage; the producer keeps h itself.
func givenHeaders(h Headers) (outHeaders, error) {
	size, err := checkHeaders(h)
	if err != nil || size == 0 {
		return outHeaders{}, err
	}
	return outHeaders{given: h, size: size}, nil
}

// encodedHeaders are headers already encoded, nil for none.
func encodedHeaders(b []byte) outHeaders { return outHeaders{encoded: b, size: len(b)} }

// none reports whether there are no headers.
func (h outHeaders) none() bool { return h.size == 0 }

// appendTo appends the encoding to dst.
func (h outHeaders) appendTo(dst []byte) []byte {
	if h.given != nil {
		return appendHeaders(dst, h.given)
	}
	return append(dst, h.encoded...)
}

// bytes is the encoding, for a durable queue: allocated when the headers
// are kept as given. nil for none.
func (h outHeaders) bytes() []byte {
	if h.given == nil {
		return h.encoded
	}
	return appendHeaders(make([]byte, 0, h.size), h.given)
}
