package delivery

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// SeqNr is a message's sequence number within one numbering of a producer.
// Numbering starts at 1; 0 means "none".
type SeqNr uint64

// The wire format, version 2. All integers are unsigned varints unless
// noted.
//
//	frame     = magic(1 byte, 0xBD) version(1 byte, 2) kind(1 byte)
//	            producerEpoch consumerEpoch idLen(1 byte) producerID(idLen bytes)
//	            message*
//	message   = type(1 byte) bodyLen body(bodyLen bytes)
//
//	data frames (producer -> consumer) carry only sequenced messages:
//	  sequenced = flags(1 byte) seqNr [extLen ext*] payload(the rest of the body)
//	              (the extension block is there when flags has flagExt)
//	control frames (consumer -> producer):
//	  register  = maxMessageSize ext*
//	  request   = confirmedSeqNr requestUpToSeqNr flags(1 byte) maxMessageSize ext*
//	  ack       = confirmedSeqNr maxMessageSize ext*
//	  resend    = fromSeqNr ext*
//	ext       = tag(1 byte) len value(len bytes)
//
// maxMessageSize is the largest message the consumer accepts (its
// MaxMessageSize): every control message that can confirm carries it, so a
// producer knows the limit before it learns of a confirmation, refuses
// larger messages at Send, and replaces one it took before it knew with a
// tombstone (flagRefused, no payload), whose Confirmation fails with a
// *MessageTooLargeError. A consumer therefore never stops on a message it
// cannot take.
//
// Extensions carry what some messages need and most do not, so that they
// cost nothing when absent, and let the format grow inside version 2: a
// tag with bit 7 set is critical, and a decoder that does not know it
// refuses the message (the frame is dropped whole); any other unknown tag
// is skipped. Defined now:
//
//	extTotalSize (1): on the first chunk of a chunked message, the
//	  message's whole size, so a consumer that cannot take it knows at once
//	  and buffers nothing.
//	extHeaders (3): on the first chunk of a message (or the whole one), its
//	  headers (see Headers and encodeHeaders).
//	extWindowBytes (2): on a request or a registration, the payload bytes
//	  the producer may have sent and not had confirmed (the window in
//	  bytes, beside the one in sequence numbers); absent, none but the
//	  window's.
//	extWindow (4): on a registration, the window the consumer grants from
//	  the first message of the numbering that answers it, so the producer
//	  need not wait a round trip for the first request; absent, one
//	  message until then.
//
// Every length is checked against what is left of the frame before it is
// used, so a decoder never reads out of bounds and never allocates from a
// length it has not verified. Payloads alias the frame's bytes.
//
// A frame of another version is refused with an error wrapping
// ErrUnsupportedVersion that names both versions; both ends of a stream run
// the same version. A sealed frame (see Seal) starts with another magic
// byte, which the decoder names, so an end without the secret says so.
const (
	wireMagic   byte = 0xBD
	wireVersion byte = 2

	maxProducerIDLen = 255
	// frameHeaderMax is the most header bytes a frame can take: magic,
	// version, kind, two 10-byte varints, the ID length and the ID.
	frameHeaderMax = 3 + 2*binary.MaxVarintLen64 + 1 + maxProducerIDLen
	// seqMessageOverhead is the most bytes a sequenced message adds to its
	// payload, headers aside: type, body length, flags, sequence number, and
	// an extension block of a total size. A first chunk with headers holds
	// that much less payload (see headersRoom).
	seqMessageOverhead = 1 + binary.MaxVarintLen64 + 1 + binary.MaxVarintLen64 + totalSizeExtMax
	// totalSizeExtMax is the most bytes the extension block of a total size
	// takes: its length, the tag, the value's length and the value.
	totalSizeExtMax = 1 + 1 + 1 + binary.MaxVarintLen64
)

type frameKind byte

const (
	dataFrame    frameKind = 1
	controlFrame frameKind = 2
)

func (k frameKind) String() string {
	switch k {
	case dataFrame:
		return "data"
	case controlFrame:
		return "control"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

type msgType byte

const (
	msgSequenced msgType = 1
	msgRegister  msgType = 2
	msgRequest   msgType = 3
	msgAck       msgType = 4
	msgResend    msgType = 5
)

// Flags of a sequenced message.
const (
	flagFirst      byte = 1 << 0 // start of a numbering: a consumer without one accepts from here
	flagAck        byte = 1 << 1 // the producer wants an Ack when this one is confirmed
	flagFirstChunk byte = 1 << 2
	flagLastChunk  byte = 1 << 3
	flagRefused    byte = 1 << 4 // a tombstone: the producer refused the message (too large for the consumer); no payload
	flagExt        byte = 1 << 5 // an extension block precedes the payload
	seqFlagsKnown       = flagFirst | flagAck | flagFirstChunk | flagLastChunk | flagRefused | flagExt
)

// Flags of a request.
const (
	reqSupportResend byte = 1 << 0
	reqViaTimeout    byte = 1 << 1
	reqFlagsKnown         = reqSupportResend | reqViaTimeout
)

// Extension tags. Bit 7 marks a critical one.
const (
	extTotalSize   byte = 1
	extWindowBytes byte = 2
	extHeaders     byte = 3
	extWindow      byte = 4
	extCritical    byte = 1 << 7
)

// frameHeader identifies the producer numbering and the consumer incarnation
// a frame belongs to. Control frames carry the numbering they answer (epoch 0
// in a register: "any producer of this ID", ID empty: "any producer").
type frameHeader struct {
	kind          frameKind
	producerEpoch uint64
	consumerEpoch uint64
	producerID    string
}

// wireMsg is one decoded protocol message. Which fields mean something
// depends on typ.
type wireMsg struct {
	typ     msgType
	flags   byte
	seqNr   SeqNr  // sequenced: its number; ack, request: confirmed; resend: from
	upTo    SeqNr  // request: the highest number the producer may send
	maxMsg  uint64 // register, request, ack: the largest message the consumer accepts
	winB    uint64 // register, request: the window in bytes (0: none given)
	window  uint64 // register: the window granted from the first message (0: none given)
	total   uint64 // sequenced, first chunk of a chunked message: the message's size (0: not given)
	headers []byte // sequenced, first chunk: the message's headers, encoded (nil: none)
	payload []byte
}

func (m wireMsg) has(flag byte) bool { return m.flags&flag != 0 }

// appendFrameHeader starts a frame in dst.
func appendFrameHeader(dst []byte, h frameHeader) []byte {
	dst = append(dst, wireMagic, wireVersion, byte(h.kind))
	dst = binary.AppendUvarint(dst, h.producerEpoch)
	dst = binary.AppendUvarint(dst, h.consumerEpoch)
	dst = append(dst, byte(len(h.producerID)))
	return append(dst, h.producerID...)
}

// appendSequenced writes a sequenced message; total, when not 0, is the
// whole message's size, for its first chunk; headers, unless none, its
// headers, for its first chunk too.
func appendSequenced(dst []byte, flags byte, seqNr SeqNr, total int, headers headerBlock, payload []byte) []byte {
	ext := extBlockLen(total, headers)
	if ext > 0 {
		flags |= flagExt
	}
	dst = append(dst, byte(msgSequenced))
	dst = binary.AppendUvarint(dst, uint64(sequencedBodyLen(seqNr, total, headers, len(payload))))
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(seqNr))
	if ext > 0 {
		dst = binary.AppendUvarint(dst, uint64(ext))
		dst = appendNumberExt(dst, extTotalSize, total)
		if headers.len > 0 {
			dst = append(dst, extHeaders)
			dst = binary.AppendUvarint(dst, uint64(headers.len))
			dst = appendHeaders(dst, headers.h)
		}
	}
	return append(dst, payload...)
}

// headersRoom is what encoded headers of n bytes take in a sequenced
// message: the extension's tag, its length and the headers.
func headersRoom(n int) int { return 1 + uvarintLen(uint64(n)) + n }

// A number extension (extTotalSize, extWindowBytes, extWindow) holds one
// varint above 0; 0 means absent and takes no bytes.

// numberExtLen is the bytes appendNumberExt adds for v.
func numberExtLen(v int) int {
	if v <= 0 {
		return 0
	}
	return 2 + uvarintLen(uint64(v))
}

// appendNumberExt appends extension tag holding v, unless v is 0.
func appendNumberExt(dst []byte, tag byte, v int) []byte {
	if v <= 0 {
		return dst
	}
	dst = append(dst, tag, byte(uvarintLen(uint64(v))))
	return binary.AppendUvarint(dst, uint64(v))
}

// numberExt reads a number extension's value: one varint that fills it,
// above 0.
func numberExt(value []byte, what string) (uint64, *FrameError) {
	v, k, err := readUvarint(value, 0, what)
	if err != nil || k != len(value) || v == 0 {
		return 0, &FrameError{Reason: "a malformed " + what}
	}
	return v, nil
}

// extBlockLen is the length of a sequenced message's extension block.
func extBlockLen(total int, headers headerBlock) int {
	n := numberExtLen(total)
	if headers.len > 0 {
		n += headersRoom(headers.len)
	}
	return n
}

func sequencedBodyLen(seqNr SeqNr, total int, headers headerBlock, payloadLen int) int {
	n := 1 + uvarintLen(uint64(seqNr)) + payloadLen
	if ext := extBlockLen(total, headers); ext > 0 {
		n += uvarintLen(uint64(ext)) + ext
	}
	return n
}

// sequencedSize is the exact number of bytes appendSequenced adds.
func sequencedSize(seqNr SeqNr, total int, headers headerBlock, payloadLen int) int {
	bodyLen := sequencedBodyLen(seqNr, total, headers, payloadLen)
	return 1 + uvarintLen(uint64(bodyLen)) + bodyLen
}

// The control messages' sizes are bounded by controlMessageMax: type,
// length, up to three numbers and a flag byte, and one extension (a
// registration: one number and two extensions, less).
const controlMessageMax = 1 + 1 + 3*binary.MaxVarintLen64 + 1 + (2 + binary.MaxVarintLen64)

func appendRegister(dst []byte, maxMsg, window, windowBytes int) []byte {
	bodyLen := uvarintLen(uint64(maxMsg)) + numberExtLen(window) + numberExtLen(windowBytes)
	dst = append(dst, byte(msgRegister), byte(bodyLen))
	dst = binary.AppendUvarint(dst, uint64(maxMsg))
	dst = appendNumberExt(dst, extWindow, window)
	return appendNumberExt(dst, extWindowBytes, windowBytes)
}

func appendRequest(dst []byte, confirmed, upTo SeqNr, flags byte, maxMsg, windowBytes int) []byte {
	bodyLen := uvarintLen(uint64(confirmed)) + uvarintLen(uint64(upTo)) + 1 + uvarintLen(uint64(maxMsg)) + numberExtLen(windowBytes)
	dst = append(dst, byte(msgRequest))
	dst = binary.AppendUvarint(dst, uint64(bodyLen))
	dst = binary.AppendUvarint(dst, uint64(confirmed))
	dst = binary.AppendUvarint(dst, uint64(upTo))
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(maxMsg))
	return appendNumberExt(dst, extWindowBytes, windowBytes)
}

func appendAck(dst []byte, confirmed SeqNr, maxMsg int) []byte {
	dst = append(dst, byte(msgAck), byte(uvarintLen(uint64(confirmed))+uvarintLen(uint64(maxMsg))))
	dst = binary.AppendUvarint(dst, uint64(confirmed))
	return binary.AppendUvarint(dst, uint64(maxMsg))
}

func appendResend(dst []byte, from SeqNr) []byte {
	dst = append(dst, byte(msgResend), byte(uvarintLen(uint64(from))))
	return binary.AppendUvarint(dst, uint64(from))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// parseFrameHeader checks a frame's header and returns it with the offset of
// the first message.
func parseFrameHeader(b []byte) (frameHeader, int, error) {
	var h frameHeader
	if len(b) < 3 {
		return h, 0, &FrameError{Offset: 0, Reason: fmt.Sprintf("%d bytes is shorter than a frame header", len(b))}
	}
	if b[0] == sealMagic {
		return h, 0, &FrameError{Offset: 0, Reason: "a sealed frame, and this end has no secret to open it: give both ends of the stream the same secret (BRIDGE_SECRET)"}
	}
	if b[0] != wireMagic {
		return h, 0, &FrameError{Offset: 0, Reason: fmt.Sprintf("bad magic byte 0x%02x", b[0])}
	}
	if b[1] != wireVersion {
		return h, 0, &FrameError{Offset: 1, Reason: fmt.Sprintf("wire version %d; this build speaks %d: both ends of a stream must run builds of the same wire version", b[1], wireVersion), Err: ErrUnsupportedVersion}
	}
	h.kind = frameKind(b[2])
	if h.kind == workFrame {
		return h, 0, &FrameError{Offset: 2, Reason: "a work-pulling frame, and this end runs point-to-point: run both ends of the stream in the same mode (BRIDGE_MODE)"}
	}
	if h.kind != dataFrame && h.kind != controlFrame {
		return h, 0, &FrameError{Offset: 2, Reason: fmt.Sprintf("unknown frame kind %d", b[2])}
	}
	off := 3
	var err *FrameError
	if h.producerEpoch, off, err = readUvarint(b, off, "producer epoch"); err != nil {
		return h, 0, err
	}
	if h.consumerEpoch, off, err = readUvarint(b, off, "consumer epoch"); err != nil {
		return h, 0, err
	}
	if off >= len(b) {
		return h, 0, &FrameError{Offset: off, Reason: "frame ends before the producer ID"}
	}
	idLen := int(b[off])
	off++
	if idLen > len(b)-off {
		return h, 0, &FrameError{Offset: off - 1, Reason: fmt.Sprintf("producer ID of %d bytes overruns the frame", idLen)}
	}
	id := b[off : off+idLen]
	if !utf8.Valid(id) {
		return h, 0, &FrameError{Offset: off, Reason: "producer ID is not valid UTF-8"}
	}
	h.producerID = string(id)
	return h, off + idLen, nil
}

// frameReader walks the messages of a frame without allocating. With
// checked, the frame passed parseFrame: the headers' names and values, the
// costliest part of a message to check, are not checked again.
type frameReader struct {
	b       []byte
	off     int
	kind    frameKind
	checked bool
}

// next decodes the next message. It returns ok=false at the end of the frame
// or with an error.
func (r *frameReader) next() (m wireMsg, ok bool, err error) {
	if r.off >= len(r.b) {
		return m, false, nil
	}
	start := r.off
	m.typ = msgType(r.b[r.off])
	bodyLen, off, ferr := readUvarint(r.b, r.off+1, "message length")
	if ferr != nil {
		return m, false, ferr
	}
	if bodyLen > uint64(len(r.b)-off) {
		return m, false, &FrameError{Offset: start, Reason: fmt.Sprintf("message of %d bytes overruns the frame (%d left)", bodyLen, len(r.b)-off)}
	}
	body := r.b[off : off+int(bodyLen)]
	r.off = off + int(bodyLen)
	if err := decodeBody(&m, body, r.kind, r.checked); err != nil {
		err.Offset += off
		if err.Offset < off {
			err.Offset = start
		}
		return m, false, err
	}
	return m, true, nil
}

// decodeBody decodes a message body. Offsets in its errors are relative to
// the body; -1 points at the message's type byte. checked: see frameReader.
func decodeBody(m *wireMsg, body []byte, kind frameKind, checked bool) *FrameError {
	wrongKind := func() *FrameError {
		return &FrameError{Offset: -1, Reason: fmt.Sprintf("message type %d in a %s frame", m.typ, kind)}
	}
	var off int
	var v uint64
	var err *FrameError
	switch m.typ {
	case msgSequenced:
		if kind != dataFrame {
			return wrongKind()
		}
		if len(body) < 2 {
			return &FrameError{Offset: 0, Reason: "sequenced message too short"}
		}
		m.flags = body[0]
		if m.flags&^seqFlagsKnown != 0 {
			return &FrameError{Offset: 0, Reason: fmt.Sprintf("unknown message flags 0x%02x", m.flags)}
		}
		if v, off, err = readUvarint(body, 1, "sequence number"); err != nil {
			return err
		}
		m.seqNr = SeqNr(v)
		if m.seqNr == 0 {
			return &FrameError{Offset: 1, Reason: "sequence number 0"}
		}
		if m.has(flagExt) {
			var extLen uint64
			start := off
			if extLen, off, err = readUvarint(body, off, "extension block length"); err != nil {
				return err
			}
			if extLen > uint64(len(body)-off) {
				return &FrameError{Offset: start, Reason: "extension block overruns the message"}
			}
			end := off + int(extLen)
			if err := decodeExtensions(m, body[:end], off, checked); err != nil {
				return err
			}
			off = end
		}
		if m.has(flagRefused) && off != len(body) {
			return &FrameError{Offset: off, Reason: "a tombstone with a payload"}
		}
		m.payload = body[off:len(body):len(body)]
		return nil
	case msgRegister:
		if kind != controlFrame {
			return wrongKind()
		}
		if m.maxMsg, off, err = readUvarint(body, 0, "largest message size"); err != nil {
			return err
		}
		return decodeExtensions(m, body, off, checked)
	case msgRequest:
		if kind != controlFrame {
			return wrongKind()
		}
		if v, off, err = readUvarint(body, 0, "confirmed sequence number"); err != nil {
			return err
		}
		m.seqNr = SeqNr(v)
		if v, off, err = readUvarint(body, off, "requested sequence number"); err != nil {
			return err
		}
		m.upTo = SeqNr(v)
		if m.upTo < m.seqNr {
			return &FrameError{Offset: 0, Reason: fmt.Sprintf("request up to %d is below confirmed %d", m.upTo, m.seqNr)}
		}
		if off >= len(body) {
			return &FrameError{Offset: off, Reason: "request flags missing"}
		}
		m.flags = body[off]
		if m.flags&^reqFlagsKnown != 0 {
			return &FrameError{Offset: off, Reason: fmt.Sprintf("unknown request flags 0x%02x", m.flags)}
		}
		if m.maxMsg, off, err = readUvarint(body, off+1, "largest message size"); err != nil {
			return err
		}
		return decodeExtensions(m, body, off, checked)
	case msgAck:
		if kind != controlFrame {
			return wrongKind()
		}
		if v, off, err = readUvarint(body, 0, "sequence number"); err != nil {
			return err
		}
		m.seqNr = SeqNr(v)
		if m.maxMsg, off, err = readUvarint(body, off, "largest message size"); err != nil {
			return err
		}
		return decodeExtensions(m, body, off, checked)
	case msgResend:
		if kind != controlFrame {
			return wrongKind()
		}
		if v, off, err = readUvarint(body, 0, "sequence number"); err != nil {
			return err
		}
		m.seqNr = SeqNr(v)
		return decodeExtensions(m, body, off, checked)
	}
	return &FrameError{Offset: -1, Reason: fmt.Sprintf("unknown message type %d", m.typ)}
}

// decodeExtensions reads the extensions in b[off:]: those it knows into m,
// unknown ones skipped, unless critical.
func decodeExtensions(m *wireMsg, b []byte, off int, checked bool) *FrameError {
	for off < len(b) {
		start := off
		tag := b[off]
		n, voff, err := readUvarint(b, off+1, "extension length")
		if err != nil {
			return err
		}
		if n > uint64(len(b)-voff) {
			return &FrameError{Offset: start, Reason: fmt.Sprintf("extension %d of %d bytes overruns the message", tag, n)}
		}
		value := b[voff : voff+int(n)]
		off = voff + int(n)
		switch {
		case tag == extTotalSize && m.typ == msgSequenced:
			if !m.has(flagFirstChunk) || m.has(flagLastChunk) {
				return &FrameError{Offset: start, Reason: "a total size on a message that is not the first chunk of a chunked one"}
			}
			v, err := numberExt(value, "total size")
			if err != nil {
				err.Offset = start
				return err
			}
			m.total = v
		case tag == extHeaders && m.typ == msgSequenced:
			if !m.has(flagFirstChunk) {
				return &FrameError{Offset: start, Reason: "headers on a message that is not the first chunk"}
			}
			if !checked {
				if _, herr := walkHeaders(value); herr != nil {
					return &FrameError{Offset: start, Reason: herr.Error()}
				}
			}
			m.headers = value
		case tag == extWindowBytes && (m.typ == msgRequest || m.typ == msgRegister):
			v, err := numberExt(value, "window in bytes")
			if err != nil {
				err.Offset = start
				return err
			}
			m.winB = v
		case tag == extWindow && m.typ == msgRegister:
			v, err := numberExt(value, "window")
			if err != nil {
				err.Offset = start
				return err
			}
			m.window = v
		case tag&extCritical != 0:
			return &FrameError{Offset: start, Reason: fmt.Sprintf("unknown critical extension %d: the peer speaks a later version 2", tag&^extCritical), Err: ErrUnsupportedVersion}
		}
	}
	return nil
}

func readUvarint(b []byte, off int, what string) (uint64, int, *FrameError) {
	if off >= len(b) {
		return 0, off, &FrameError{Offset: off, Reason: what + " missing"}
	}
	v, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return 0, off, &FrameError{Offset: off, Reason: what + " is not a valid varint"}
	}
	return v, off + n, nil
}

// parseFrame checks a whole frame: its header and every message. A frame
// that passes can be walked again with a frameReader without errors.
func parseFrame(b []byte) (frameHeader, int, error) {
	h, off, err := parseFrameHeader(b)
	if err != nil {
		return h, 0, err
	}
	r := frameReader{b: b, off: off, kind: h.kind}
	for {
		_, ok, err := r.next()
		if err != nil {
			return h, 0, err
		}
		if !ok {
			return h, off, nil
		}
	}
}
