package delivery

import (
	"encoding/binary"
	"fmt"
)

// Work-pulling frames, part of wire version 2. They are a frame kind of
// their own, so a point-to-point end that meets one refuses it with an
// error naming the mode (see parseFrameHeader), and a work-pulling end
// takes them off its links before its controllers see any frame:
//
//	work frame = magic(0xBD) version(2) kind(3) type(1) body
//	  hello     (worker -> producer, on the stream)   = idLen(1) workerID ext*
//	  heartbeat (both ways, on a worker's stream)     = ext*
//	  leave     (worker -> producer, on its stream)   = producerEpoch confirmedSeqNr ext*
//	  bye       (producer -> worker, on its stream)   = ext*
//
// A hello asks the producer to serve the worker: it opens the worker's own
// stream (WorkerStream) and runs a point-to-point numbering on it. A
// heartbeat says an end is alive when it has nothing else to say. A leave
// says the worker stops, having confirmed everything up to confirmedSeqNr
// of the numbering of producerEpoch: the producer hands the rest to other
// workers at once, and answers with a bye, which the worker waits for
// (a little) before it closes its link, so that a carrier that loses what
// a closed link had queued (tcp) does not lose the leave. Extensions follow the rules of the other messages (an
// unknown critical one refuses the frame); none is defined yet.
const workFrame frameKind = 3

type workType byte

const (
	workHello     workType = 1
	workHeartbeat workType = 2
	workLeave     workType = 3
	workBye       workType = 4
)

// workMsg is one decoded work frame.
type workMsg struct {
	typ       workType
	workerID  string // hello
	epoch     uint64 // leave: the producer numbering it confirms in
	confirmed SeqNr  // leave
}

func appendWorkHeader(dst []byte, t workType) []byte {
	return append(dst, wireMagic, wireVersion, byte(workFrame), byte(t))
}

func encodeHello(workerID string) []byte {
	b := appendWorkHeader(make([]byte, 0, 5+len(workerID)), workHello)
	b = append(b, byte(len(workerID)))
	return append(b, workerID...)
}

func encodeHeartbeat() []byte { return appendWorkHeader(nil, workHeartbeat) }

func encodeBye() []byte { return appendWorkHeader(nil, workBye) }

func encodeLeave(epoch uint64, confirmed SeqNr) []byte {
	b := appendWorkHeader(make([]byte, 0, 4+2*binary.MaxVarintLen64), workLeave)
	b = binary.AppendUvarint(b, epoch)
	return binary.AppendUvarint(b, uint64(confirmed))
}

// isWorkFrame reports whether b is a work frame of this version, to be
// decoded with parseWorkFrame; any other frame goes to the controller.
func isWorkFrame(b []byte) bool {
	return len(b) >= 3 && b[0] == wireMagic && b[1] == wireVersion && frameKind(b[2]) == workFrame
}

// parseWorkFrame decodes a work frame; isWorkFrame(b) holds.
func parseWorkFrame(b []byte) (workMsg, error) {
	var m workMsg
	if len(b) < 4 {
		return m, &FrameError{Offset: 3, Reason: "work frame without a type"}
	}
	m.typ = workType(b[3])
	off := 4
	var err *FrameError
	switch m.typ {
	case workHello:
		if off >= len(b) {
			return m, &FrameError{Offset: off, Reason: "hello without a worker ID"}
		}
		n := int(b[off])
		off++
		if n > len(b)-off {
			return m, &FrameError{Offset: off - 1, Reason: fmt.Sprintf("worker ID of %d bytes overruns the frame", n)}
		}
		m.workerID = string(b[off : off+n])
		if verr := CheckWorkerID(m.workerID); verr != nil {
			return m, &FrameError{Offset: off, Reason: verr.Error()}
		}
		off += n
	case workHeartbeat, workBye:
	case workLeave:
		if m.epoch, off, err = readUvarint(b, off, "producer epoch"); err != nil {
			return m, err
		}
		var v uint64
		if v, off, err = readUvarint(b, off, "confirmed sequence number"); err != nil {
			return m, err
		}
		m.confirmed = SeqNr(v)
	default:
		return m, &FrameError{Offset: 3, Reason: fmt.Sprintf("unknown work message type %d: the peer speaks a later version 2", m.typ), Err: ErrUnsupportedVersion}
	}
	var skip wireMsg
	if ferr := decodeExtensions(&skip, b, off, false); ferr != nil {
		return m, ferr
	}
	return m, nil
}

// MaxWorkerIDLen is the longest worker ID.
const MaxWorkerIDLen = 64

// CheckWorkerID says whether id can name a worker: 1 to MaxWorkerIDLen
// bytes of ASCII letters, digits and '-', so that the stream named after it
// (WorkerStream) is a valid subject, stream, queue and topic name on every
// carrier, and tells which stream and worker it serves.
func CheckWorkerID(id string) error {
	if id == "" || len(id) > MaxWorkerIDLen {
		return fmt.Errorf("delivery: worker ID %q: want 1 to %d bytes", id, MaxWorkerIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("delivery: worker ID %q: only ASCII letters, digits and '-'", id)
		}
	}
	return nil
}

// WorkerStream names the stream that carries the work of worker id on a
// work-pulling stream: stream, "_w_" and the ID (which has no '_', so the
// name is never another stream's worker's). Its producer end is the
// work-pulling producer's, its consumer end the worker's.
func WorkerStream(stream, workerID string) string { return stream + "_w_" + workerID }
