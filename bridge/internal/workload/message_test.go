package workload

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestMessageSizes: a message is exactly its size, whatever the size (from
// the bench's smallest, 32 bytes, to its largest, 1,000,000), and reads back
// its number and time.
func TestMessageSizes(t *testing.T) {
	at := time.Unix(1_790_000_000, 123456789)
	for _, size := range []int{32, 128, 64 << 10, 64<<10 + 1, 1_000_000} {
		msg := Message(123456, size, at)
		i, got, ok := Parse(msg)
		if len(msg) != size || !ok || i != 123456 || !got.Equal(at) {
			t.Errorf("size %d: %d bytes, number %d, time %v, ok %v", size, len(msg), i, got, ok)
		}
		if bytes.Count(msg, []byte{'x'}) != size-len(Message(123456, 0, at)) {
			t.Errorf("size %d: padding is not all 'x'", size)
		}
	}
}

func TestTally(t *testing.T) {
	at := time.Now()
	tl := NewTally(3)
	for _, i := range []int{1, 3, 3} {
		tl.Add(Message(i, 64, at), at.Add(time.Millisecond))
	}
	tl.Add([]byte("not a message"), at)
	tl.Add(Message(4, 64, at), at) // beyond the count
	if tl.Distinct() != 2 || tl.Duplicates() != 1 || tl.Malformed() != 2 || tl.Delivered() != 5 || tl.Lost() != 1 {
		t.Errorf("distinct %d, duplicates %d, malformed %d, delivered %d, lost %d; want 2, 1, 2, 5, 1",
			tl.Distinct(), tl.Duplicates(), tl.Malformed(), tl.Delivered(), tl.Lost())
	}
	if l := tl.Latencies(); len(l) != 2 || l[0] != time.Millisecond {
		t.Errorf("latencies %v; want two of 1ms", l)
	}
	if p := Percentiles([]time.Duration{3, 1, 2}); p[0] != 2 || p[3] != 3 {
		t.Errorf("percentiles %v", p)
	}
}

// TestParseRefusesWhatIsNotAMessage: anything but two decimals that fit,
// each followed by a space, is malformed.
func TestParseRefusesWhatIsNotAMessage(t *testing.T) {
	for _, b := range []string{"", "12", "12 ", " 12 ", "1x 12 ", "12 1x ", "-1 12 ", "+1 12 ", "1 -12 ",
		"1 9223372036854775808 ", "99999999999999999999 1 "} {
		if i, at, ok := Parse([]byte(b)); ok {
			t.Errorf("%q: parsed as %d, %v", b, i, at)
		}
	}
	if i, at, ok := Parse([]byte("0 9223372036854775807 x")); !ok || i != 0 || at.UnixNano() != 9223372036854775807 {
		t.Errorf("the largest time: %d, %v, %v", i, at, ok)
	}
}

// TestSlab: messages from a slab are those Message makes, each capped at
// its end, so that appending to one never touches the next.
func TestSlab(t *testing.T) {
	at := time.Unix(1_790_000_000, 123456789)
	var s Slab
	var msgs [][]byte
	sizes := []int{32, 128, 1000, 64 << 10, 33, 5000}
	for k := range 200 {
		msgs = append(msgs, s.Message(k, sizes[k%len(sizes)], at))
	}
	for k, m := range msgs {
		if want := Message(k, sizes[k%len(sizes)], at); !bytes.Equal(m, want) || cap(m) != len(m) {
			t.Fatalf("message %d: %d bytes (cap %d), want %d bytes as Message makes them", k, len(m), cap(m), len(want))
		}
		_ = append(m, "overwrite"...)
	}
	for k, m := range msgs {
		if !bytes.Equal(m, Message(k, sizes[k%len(sizes)], at)) {
			t.Fatalf("message %d changed when its neighbour was appended to", k)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.Message(1, 128, at) }); n > 0.05 {
		t.Errorf("%v allocations per 128 B message", n)
	}
}

// TestParseAgreesWithStrconv: every decimal Parse reads, from one digit to
// nineteen, and with a wrong byte at each place, reads as strconv does.
func TestParseAgreesWithStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		digits := 1 + rng.IntN(20)
		b := make([]byte, digits)
		for k := range b {
			b[k] = byte('0' + rng.IntN(10))
		}
		if rng.IntN(4) == 0 {
			b[rng.IntN(digits)] = byte(rng.IntN(256))
		}
		b = bytes.ReplaceAll(b, []byte{' '}, []byte{'a'}) // a space ends a number
		want, err := strconv.ParseInt(string(b), 10, 64)
		wantOK := err == nil && want >= 0 && digits <= 19 && !bytes.ContainsAny(b, "+-")
		got, _, ok := decimal(append(b, ' '))
		if ok != wantOK || ok && got != want {
			t.Fatalf("%q: got %d, %v; strconv %d, %v", b, got, ok, want, wantOK)
		}
	}
}

// TestTallyAddAll: a batch counts as its messages one by one do.
func TestTallyAddAll(t *testing.T) {
	at := time.Now()
	one, all := NewTally(3), NewTally(3)
	batch := [][]byte{Message(1, 64, at), Message(3, 64, at), Message(3, 64, at), []byte("not a message"), Message(4, 64, at)}
	for _, m := range batch {
		one.Add(m, at.Add(time.Millisecond))
	}
	all.AddAll(batch, at.Add(time.Millisecond))
	for _, tl := range []*Tally{one, all} {
		if tl.Distinct() != 2 || tl.Duplicates() != 1 || tl.Malformed() != 2 || tl.Delivered() != 5 || len(tl.Latencies()) != 2 {
			t.Errorf("distinct %d, duplicates %d, malformed %d, delivered %d, latencies %d; want 2, 1, 2, 5, 2",
				tl.Distinct(), tl.Duplicates(), tl.Malformed(), tl.Delivered(), len(tl.Latencies()))
		}
	}
}

// TestClock: the clock's stamps follow the wall clock and never go back.
func TestClock(t *testing.T) {
	before := time.Now()
	c := NewClock()
	prev := c.Now()
	for range 1000 {
		now := c.Now()
		if now.Before(prev) {
			t.Fatalf("the clock went back from %v to %v", prev, now)
		}
		prev = now
	}
	after := time.Now()
	// Wall clock readings only: a stamp travels in a message as Unix
	// nanoseconds.
	if got := prev.UnixNano(); got < before.UnixNano() || got > after.UnixNano() {
		t.Errorf("stamp %d outside the wall clock's %d to %d", got, before.UnixNano(), after.UnixNano())
	}
}
