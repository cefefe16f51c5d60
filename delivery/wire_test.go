package delivery

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// encodeFrame writes a frame holding msgs; a test helper mirroring what the
// controllers write.
func encodeFrame(h frameHeader, msgs []wireMsg) []byte {
	b := appendFrameHeader(nil, h)
	for _, m := range msgs {
		switch m.typ {
		case msgSequenced:
			b = appendSequenced(b, m.flags&^flagExt, m.seqNr, int(m.total), blockOfEncoded(m.headers), m.payload)
		case msgRegister:
			b = appendRegister(b, int(m.maxMsg), int(m.window), int(m.winB))
		case msgRequest:
			b = appendRequest(b, m.seqNr, m.upTo, m.flags, int(m.maxMsg), int(m.winB))
		case msgAck:
			b = appendAck(b, m.seqNr, int(m.maxMsg))
		case msgResend:
			b = appendResend(b, m.seqNr)
		}
	}
	return b
}

// decodeFrame parses a frame and returns its header and messages.
func decodeFrame(b []byte) (frameHeader, []wireMsg, error) {
	h, off, err := parseFrame(b)
	if err != nil {
		return h, nil, err
	}
	r := frameReader{b: b, off: off, kind: h.kind}
	var msgs []wireMsg
	for {
		m, ok, err := r.next()
		if err != nil {
			return h, nil, err
		}
		if !ok {
			return h, msgs, nil
		}
		msgs = append(msgs, m)
	}
}

func sampleFrames() []struct {
	h    frameHeader
	msgs []wireMsg
} {
	big := bytes.Repeat([]byte("x"), 70000)
	return []struct {
		h    frameHeader
		msgs []wireMsg
	}{
		{frameHeader{kind: dataFrame, producerEpoch: 1, consumerEpoch: 0, producerID: "p"}, []wireMsg{
			{typ: msgSequenced, flags: flagFirst | flagFirstChunk | flagLastChunk, seqNr: 1, payload: []byte("hello")},
			{typ: msgSequenced, flags: flagFirstChunk | flagExt, seqNr: 2, total: 70000, headers: mustEncode(Headers{{"content-type", "text/plain"}, {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}), payload: big},
			{typ: msgSequenced, flags: flagFirstChunk | flagLastChunk | flagExt, seqNr: 6, headers: mustEncode(Headers{{"k", ""}}), payload: []byte("h")},
			{typ: msgSequenced, flags: flagLastChunk | flagAck, seqNr: 3, payload: []byte{}},
			{typ: msgSequenced, flags: flagFirstChunk | flagRefused | flagExt, seqNr: 4, total: 1 << 40, payload: []byte{}},
			{typ: msgSequenced, flags: flagLastChunk | flagRefused, seqNr: 5, payload: []byte{}},
		}},
		{frameHeader{kind: dataFrame, producerEpoch: math.MaxUint64, consumerEpoch: math.MaxUint64, producerID: strings.Repeat("é", 127)}, []wireMsg{
			{typ: msgSequenced, flags: flagFirstChunk | flagLastChunk, seqNr: math.MaxUint64, payload: []byte("z")},
		}},
		{frameHeader{kind: controlFrame, producerEpoch: 0, consumerEpoch: 42, producerID: ""}, []wireMsg{
			{typ: msgRegister, maxMsg: 16 << 20},
			{typ: msgRegister, maxMsg: 16 << 20, window: 1000, winB: 4 << 20},
		}},
		{frameHeader{kind: controlFrame, producerEpoch: 7, consumerEpoch: 42, producerID: "orders"}, []wireMsg{
			{typ: msgRequest, seqNr: 10, upTo: 1010, flags: reqSupportResend, maxMsg: 1, winB: 4 << 20},
			{typ: msgRequest, seqNr: 0, upTo: 0, flags: reqSupportResend | reqViaTimeout, maxMsg: math.MaxUint64},
			{typ: msgAck, seqNr: 11, maxMsg: 300},
			{typ: msgResend, seqNr: 12},
		}},
		{frameHeader{kind: controlFrame, producerEpoch: 7, consumerEpoch: 42, producerID: "orders"}, nil},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for i, f := range sampleFrames() {
		b := encodeFrame(f.h, f.msgs)
		h, msgs, err := decodeFrame(b)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if h != f.h {
			t.Errorf("frame %d: header %+v, want %+v", i, h, f.h)
		}
		for j := range f.msgs {
			if f.msgs[j].payload == nil && f.msgs[j].typ == msgSequenced {
				f.msgs[j].payload = []byte{}
			}
		}
		if len(msgs) != len(f.msgs) || (len(msgs) > 0 && !reflect.DeepEqual(msgs, f.msgs)) {
			t.Errorf("frame %d: messages %+v, want %+v", i, msgs, f.msgs)
		}
		for _, m := range f.msgs {
			if m.typ == msgSequenced {
				// The size the producer reserves is exact.
				if got, want := len(appendSequenced(nil, m.flags, m.seqNr, int(m.total), blockOfEncoded(m.headers), m.payload)), sequencedSize(m.seqNr, int(m.total), blockOfEncoded(m.headers), len(m.payload)); got != want {
					t.Errorf("sequencedSize(%d, %d, %d) = %d, appended %d", m.seqNr, m.total, len(m.payload), want, got)
				}
			}
		}
	}
}

func TestWireRejects(t *testing.T) {
	valid := encodeFrame(frameHeader{kind: controlFrame, producerEpoch: 1, consumerEpoch: 2, producerID: "p"},
		[]wireMsg{{typ: msgAck, seqNr: 5, maxMsg: 9}})
	data := encodeFrame(frameHeader{kind: dataFrame, producerEpoch: 1, producerID: "p"},
		[]wireMsg{{typ: msgSequenced, flags: flagFirstChunk | flagLastChunk, seqNr: 1, payload: []byte("ab")}})
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := []struct {
		name    string
		b       []byte
		want    string
		version bool
	}{
		{"empty", nil, "shorter than a frame header", false},
		{"bad magic", mutate(valid, func(b []byte) []byte { b[0] = 'G'; return b }), "bad magic", false},
		{"future version", mutate(valid, func(b []byte) []byte { b[1] = 3; return b }), "wire version 3; this build speaks 2", true},
		{"version 1 peer", mutate(valid, func(b []byte) []byte { b[1] = 1; return b }), "wire version 1; this build speaks 2: both ends", true},
		{"a sealed frame", mutate(valid, func(b []byte) []byte { b[0] = sealMagic; return b }), "no secret to open it", false},
		{"unknown kind", mutate(valid, func(b []byte) []byte { b[2] = 9; return b }), "unknown frame kind", false},
		{"truncated header", valid[:4], "consumer epoch missing", false},
		{"no producer ID length", valid[:5], "before the producer ID", false},
		{"epoch varint overflow", append([]byte{wireMagic, wireVersion, 2}, bytes.Repeat([]byte{0xff}, 11)...), "not a valid varint", false},
		{"ID overruns", []byte{wireMagic, wireVersion, 2, 1, 1, 200, 'p'}, "overruns the frame", false},
		{"ID not UTF-8", []byte{wireMagic, wireVersion, 2, 1, 1, 1, 0xff}, "UTF-8", false},
		{"message overruns", mutate(valid, func(b []byte) []byte { b[len(b)-3] = 100; return b }), "overruns the frame", false},
		{"truncated message", valid[:len(valid)-1], "overruns the frame", false},
		{"unknown message type", mutate(valid, func(b []byte) []byte { b[len(b)-4] = 99; return b }), "unknown message type", false},
		{"sequenced in a control frame", mutate(data, func(b []byte) []byte { b[2] = 2; return b }), "in a control frame", false},
		{"ack in a data frame", mutate(valid, func(b []byte) []byte { b[2] = 1; return b }), "in a data frame", false},
		{"unknown flags", mutate(data, func(b []byte) []byte { b[len(b)-4] = 0x80; return b }), "unknown message flags", false},
		{"sequence number 0", mutate(data, func(b []byte) []byte { b[len(b)-3] = 0; return b }), "sequence number 0", false},
		{"request below confirmed", encodeFrame(frameHeader{kind: controlFrame}, []wireMsg{{typ: msgRequest, seqNr: 9, upTo: 3}}), "below confirmed", false},
		{"ack without its limit", mutate(valid, func(b []byte) []byte { b[len(b)-3] = 1; return b[:len(b)-1] }), "largest message size missing", false},
		{"unknown critical extension", append(mutate(valid, func(b []byte) []byte { b[len(b)-3] += 3; return b }), 0x85, 1, 0), "unknown critical extension 5", true},
		{"an extension overruns", append(mutate(valid, func(b []byte) []byte { b[len(b)-3] += 2; return b }), 0x05, 9), "overruns the message", false},
		{"a tombstone with a payload", encodeFrame(frameHeader{kind: dataFrame}, []wireMsg{{typ: msgSequenced, flags: flagFirstChunk | flagLastChunk | flagRefused, seqNr: 1, payload: []byte("x")}}), "tombstone with a payload", false},
		{"a total size on a whole message", encodeFrame(frameHeader{kind: dataFrame}, []wireMsg{{typ: msgSequenced, flags: flagFirstChunk | flagLastChunk, seqNr: 1, total: 5, payload: []byte("x")}}), "not the first chunk", false},
	}
	for _, c := range cases {
		_, _, err := decodeFrame(c.b)
		if err == nil {
			t.Errorf("%s: decoded", c.name)
			continue
		}
		var fe *FrameError
		if !errors.As(err, &fe) || !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: %v is not a *FrameError matching ErrMalformedFrame", c.name, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.want)
		}
		if errors.Is(err, ErrUnsupportedVersion) != c.version {
			t.Errorf("%s: errors.Is(ErrUnsupportedVersion) = %v", c.name, !c.version)
		}
	}
}

// TestWireDecodeAllocatesNothing: checking a frame allocates nothing but the
// producer ID, whatever the frame claims.
func TestWireDecodeAllocatesNothing(t *testing.T) {
	msgs := make([]wireMsg, 10000)
	for i := range msgs {
		msgs[i] = wireMsg{typ: msgSequenced, flags: flagFirstChunk | flagLastChunk, seqNr: SeqNr(i + 1), payload: []byte("0123456789")}
	}
	b := encodeFrame(frameHeader{kind: dataFrame, producerEpoch: 1, producerID: "p"}, msgs)
	allocs := testing.AllocsPerRun(10, func() {
		if _, _, err := parseFrame(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("parseFrame allocated %v times; want at most 1 (the ID)", allocs)
	}
}

// FuzzDecodeFrame feeds the decoder arbitrary bytes: it must return an error
// or a frame, never panic, and a frame it accepts must survive re-encoding.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range sampleFrames() {
		f.Add(encodeFrame(s.h, s.msgs))
	}
	f.Add([]byte{wireMagic, wireVersion, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, msgs, err := decodeFrame(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FrameError", err)
			}
			if fe.Offset < 0 || fe.Offset > len(b) {
				t.Fatalf("error offset %d outside a frame of %d bytes", fe.Offset, len(b))
			}
			return
		}
		h2, msgs2, err := decodeFrame(encodeFrame(h, msgs))
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if h2 != h || len(msgs2) != len(msgs) {
			t.Fatalf("re-encoding changed the frame: %+v %d vs %+v %d", h, len(msgs), h2, len(msgs2))
		}
		for i := range msgs {
			a, b := msgs[i], msgs2[i]
			if a.typ != b.typ || a.flags&^flagExt != b.flags&^flagExt || a.seqNr != b.seqNr || a.upTo != b.upTo || a.maxMsg != b.maxMsg || a.winB != b.winB || a.total != b.total || !bytes.Equal(a.headers, b.headers) || !bytes.Equal(a.payload, b.payload) {
				t.Fatalf("message %d changed: %+v vs %+v", i, a, b)
			}
			if a.headers != nil {
				// What the reader let through decodes without a second check,
				// and encodes back to the same bytes (names in lower case).
				var arena []Header
				again, err := encodeHeaders(decodeHeaders(a.headers, &arena))
				if err != nil || !bytes.EqualFold(again, a.headers) {
					t.Fatalf("message %d: headers %q decode and encode to %q (%v)", i, a.headers, again, err)
				}
			}
		}
	})
}

// blockOfEncoded is what the producer writes for headers encoded as b.
func blockOfEncoded(b []byte) headerBlock {
	if b == nil {
		return headerBlock{}
	}
	var arena []Header
	return blockOf(decodeHeaders(b, &arena))
}

func mustEncode(h Headers) []byte {
	b, err := encodeHeaders(h)
	if err != nil {
		panic(err)
	}
	return b
}
