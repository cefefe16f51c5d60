package adaptertest

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// Payload builds message i of size bytes (at least 8): the index, then
// filler derived from it, so that a corrupted, truncated or misassembled
// payload is detected by Index.
func Payload(i, size int) []byte {
	size = max(size, 8)
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < size; j++ {
		b[j] = byte(i*31 + j)
	}
	return b
}

// Index checks a payload built by Payload and returns its index.
func Index(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	i := int(binary.BigEndian.Uint64(b))
	for j := 8; j < len(b); j++ {
		if b[j] != byte(i*31+j) {
			return i, fmt.Errorf("message %d: byte %d of %d is corrupt", i, j, len(b))
		}
	}
	return i, nil
}

// CheckExactlyOnceInOrder fails unless got is 0, 1, ..., n-1.
func CheckExactlyOnceInOrder(t testing.TB, got []int, n int) {
	t.Helper()
	for i, v := range got {
		if v != i {
			t.Fatalf("delivery %d is message %d (want %d): not exactly once in order; around it: %v",
				i, v, i, got[max(0, i-5):min(len(got), i+5)])
		}
	}
	if len(got) != n {
		t.Fatalf("got %d deliveries, want %d", len(got), n)
	}
}

// CheckContiguous fails unless got increases by exactly one at each step:
// in order, nothing missing, nothing twice.
func CheckContiguous(t testing.TB, got []int) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("delivery %d is message %d after %d: a gap or a reordering", i, got[i], got[i-1])
		}
	}
}

// CheckLifetimes checks the deliveries of successive consumer lifetimes of
// one stream of n messages: each lifetime in order without gaps, none
// starting after the previous one stopped, and together every message. It
// returns how many deliveries were repeats (allowed across a restart).
func CheckLifetimes(t testing.TB, lifetimes [][]int, n int) (duplicates int) {
	t.Helper()
	seen := make([]bool, n)
	for life, got := range lifetimes {
		CheckContiguous(t, got)
		if life > 0 && len(got) > 0 {
			prev := lifetimes[life-1]
			if len(prev) > 0 && got[0] > prev[len(prev)-1]+1 {
				t.Fatalf("lifetime %d starts at message %d, after %d: messages lost", life, got[0], prev[len(prev)-1])
			}
		}
		for _, i := range got {
			if i < 0 || i >= n {
				t.Fatalf("message %d out of range", i)
			}
			if seen[i] {
				duplicates++
			}
			seen[i] = true
		}
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("message %d never delivered", i)
		}
	}
	return duplicates
}
