package delivery

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// SeqNr is a message's sequence number within one numbering of a producer.
// Numbering starts at 1; 0 means "none".
type SeqNr uint64

// The wire format, version 1. All integers are unsigned varints unless noted.
//
//	frame   = magic(1 byte, 0xBD) version(1 byte) kind(1 byte)
//	          producerEpoch consumerEpoch idLen(1 byte) producerID(idLen bytes)
//	          message*
//	message = type(1 byte) bodyLen body(bodyLen bytes)
//
//	data frames (producer -> consumer) carry only sequenced messages:
//	  sequenced = flags(1 byte) seqNr payload(the rest of the body)
//	control frames (consumer -> producer):
//	  register  = (empty body)
//	  request   = confirmedSeqNr requestUpToSeqNr flags(1 byte)
//	  ack       = confirmedSeqNr
//	  resend    = fromSeqNr
//
// Every length is checked against what is left of the frame before it is
// used, so a decoder never reads out of bounds and never allocates from a
// length it has not verified. Payloads alias the frame's bytes.
const (
	wireMagic   byte = 0xBD
	wireVersion byte = 1

	maxProducerIDLen = 255
	// frameHeaderMax is the most header bytes a frame can take: magic,
	// version, kind, two 10-byte varints, the ID length and the ID.
	frameHeaderMax = 3 + 2*binary.MaxVarintLen64 + 1 + maxProducerIDLen
	// seqMessageOverhead is the most bytes a sequenced message adds to its
	// payload: type, body length, flags, sequence number.
	seqMessageOverhead = 1 + binary.MaxVarintLen64 + 1 + binary.MaxVarintLen64
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
	seqFlagsKnown       = flagFirst | flagAck | flagFirstChunk | flagLastChunk
)

// Flags of a request.
const (
	reqSupportResend byte = 1 << 0
	reqViaTimeout    byte = 1 << 1
	reqFlagsKnown         = reqSupportResend | reqViaTimeout
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
	seqNr   SeqNr // sequenced: its number; ack, request: confirmed; resend: from
	upTo    SeqNr // request: the highest number the producer may send
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

func appendSequenced(dst []byte, flags byte, seqNr SeqNr, payload []byte) []byte {
	bodyLen := 1 + uvarintLen(uint64(seqNr)) + len(payload)
	dst = append(dst, byte(msgSequenced))
	dst = binary.AppendUvarint(dst, uint64(bodyLen))
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(seqNr))
	return append(dst, payload...)
}

func appendRegister(dst []byte) []byte {
	return append(dst, byte(msgRegister), 0)
}

func appendRequest(dst []byte, confirmed, upTo SeqNr, flags byte) []byte {
	bodyLen := uvarintLen(uint64(confirmed)) + uvarintLen(uint64(upTo)) + 1
	dst = append(dst, byte(msgRequest))
	dst = binary.AppendUvarint(dst, uint64(bodyLen))
	dst = binary.AppendUvarint(dst, uint64(confirmed))
	dst = binary.AppendUvarint(dst, uint64(upTo))
	return append(dst, flags)
}

// appendSeqOnly writes an ack or a resend: a message whose body is one number.
func appendSeqOnly(dst []byte, typ msgType, n SeqNr) []byte {
	dst = append(dst, byte(typ))
	dst = binary.AppendUvarint(dst, uint64(uvarintLen(uint64(n))))
	return binary.AppendUvarint(dst, uint64(n))
}

// sequencedSize is the exact number of bytes appendSequenced adds.
func sequencedSize(seqNr SeqNr, payloadLen int) int {
	bodyLen := 1 + uvarintLen(uint64(seqNr)) + payloadLen
	return 1 + uvarintLen(uint64(bodyLen)) + bodyLen
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
	if b[0] != wireMagic {
		return h, 0, &FrameError{Offset: 0, Reason: fmt.Sprintf("bad magic byte 0x%02x", b[0])}
	}
	if b[1] != wireVersion {
		return h, 0, &FrameError{Offset: 1, Reason: fmt.Sprintf("wire version %d (this build speaks %d)", b[1], wireVersion), Err: ErrUnsupportedVersion}
	}
	h.kind = frameKind(b[2])
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

// frameReader walks the messages of a frame without allocating.
type frameReader struct {
	b    []byte
	off  int
	kind frameKind
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
	if err := decodeBody(&m, body, r.kind); err != nil {
		err.Offset += off
		if err.Offset < off {
			err.Offset = start
		}
		return m, false, err
	}
	return m, true, nil
}

// decodeBody decodes a message body. Offsets in its errors are relative to
// the body; -1 points at the message's type byte.
func decodeBody(m *wireMsg, body []byte, kind frameKind) *FrameError {
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
		m.payload = body[off:len(body):len(body)]
		return nil
	case msgRegister:
		if kind != controlFrame {
			return wrongKind()
		}
		if len(body) != 0 {
			return &FrameError{Offset: 0, Reason: "register with a body"}
		}
		return nil
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
		if off != len(body)-1 {
			return &FrameError{Offset: off, Reason: "request body has the wrong length"}
		}
		m.flags = body[off]
		if m.flags&^reqFlagsKnown != 0 {
			return &FrameError{Offset: off, Reason: fmt.Sprintf("unknown request flags 0x%02x", m.flags)}
		}
		return nil
	case msgAck, msgResend:
		if kind != controlFrame {
			return wrongKind()
		}
		if v, off, err = readUvarint(body, 0, "sequence number"); err != nil {
			return err
		}
		if off != len(body) {
			return &FrameError{Offset: off, Reason: "trailing bytes after the sequence number"}
		}
		m.seqNr = SeqNr(v)
		return nil
	}
	return &FrameError{Offset: -1, Reason: fmt.Sprintf("unknown message type %d", m.typ)}
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
