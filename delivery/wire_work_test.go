package delivery

import (
	"errors"
	"testing"
)

func TestWorkFramesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		frame []byte
		want  workMsg
	}{
		{encodeHello("w-1"), workMsg{typ: workHello, workerID: "w-1"}},
		{encodeHeartbeat(), workMsg{typ: workHeartbeat}},
		{encodeLeave(1<<60, 12345), workMsg{typ: workLeave, epoch: 1 << 60, confirmed: 12345}},
		{encodeBye(), workMsg{typ: workBye}},
	} {
		if !isWorkFrame(tc.frame) {
			t.Fatalf("%x is not a work frame", tc.frame)
		}
		got, err := parseWorkFrame(tc.frame)
		if err != nil || got != tc.want {
			t.Errorf("%x: %+v, %v; want %+v", tc.frame, got, err, tc.want)
		}
	}
	// A point-to-point end names the mode.
	if _, _, err := parseFrame(encodeHeartbeat()); err == nil {
		t.Error("a point-to-point end took a work frame")
	}
	// A later version's message type, or critical extension, is refused as such.
	for _, b := range [][]byte{
		{wireMagic, wireVersion, byte(workFrame), 99},
		append(encodeHeartbeat(), 0x81, 0),
	} {
		if _, err := parseWorkFrame(b); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("%x: %v, want ErrUnsupportedVersion", b, err)
		}
	}
}

// FuzzDecodeWorkFrame: no input makes the work-frame decoder panic or
// return anything but a *FrameError; what it accepts re-encodes the same.
func FuzzDecodeWorkFrame(f *testing.F) {
	f.Add(encodeHello("worker-1"))
	f.Add(encodeHeartbeat())
	f.Add(encodeLeave(7, 9))
	f.Add(encodeBye())
	f.Add([]byte{wireMagic, wireVersion, byte(workFrame), byte(workHello), 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isWorkFrame(b) {
			return
		}
		m, err := parseWorkFrame(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FrameError", err)
			}
			return
		}
		var again []byte
		switch m.typ {
		case workHello:
			again = encodeHello(m.workerID)
		case workHeartbeat:
			again = encodeHeartbeat()
		case workLeave:
			again = encodeLeave(m.epoch, m.confirmed)
		case workBye:
			again = encodeBye()
		}
		if m2, err := parseWorkFrame(again); err != nil || m2 != m {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", m, m2, err)
		}
	})
}
