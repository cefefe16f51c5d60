package delivery_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Timings for tests: short enough that a lost tail is recovered in
// milliseconds.
var (
	fastProducer = delivery.ProducerSettings{FirstResendInterval: 5 * time.Millisecond}
	fastConsumer = delivery.ConsumerSettings{ResendMin: 5 * time.Millisecond, ResendMax: 40 * time.Millisecond}
)

// message builds the payload of message i: its index, then filler up to
// size bytes derived from the index, so a corrupted or misassembled payload
// is detected.
func message(i, size int) []byte {
	size = max(size, 8)
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < size; j++ {
		b[j] = byte(i*31 + j)
	}
	return b
}

// messageIndex checks a payload built by message and returns its index.
func messageIndex(b []byte) (int, error) {
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

// sizes returns the size of each of n messages: small ones, and with
// chunked, some of many chunks.
func sizes(rng *rand.Rand, n int, chunked bool) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 8 + rng.IntN(120)
		if chunked && rng.IntN(4) == 0 {
			out[i] = 8 + rng.IntN(2000)
		}
	}
	return out
}

// run starts a controller's Run and returns a function that waits for it
// and reports its error.
func run(t testing.TB, ctx context.Context, r interface{ Run(context.Context) error }) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("controller did not stop")
			return nil
		}
	}
}

// consume receives until n distinct messages have arrived or ctx ends,
// checking each payload, and returns the indexes in arrival order.
func consume(ctx context.Context, c *delivery.ConsumerController[[]byte], n int) ([]int, error) {
	var got []int
	seen := make(map[int]bool)
	for len(seen) < n {
		d, err := c.Receive(ctx)
		if err != nil {
			return got, err
		}
		i, err := messageIndex(d.Message)
		if err != nil {
			return got, err
		}
		got = append(got, i)
		seen[i] = true
		d.Confirm()
	}
	return got, nil
}

// checkExactlyOnceInOrder fails unless got is 0..n-1.
func checkExactlyOnceInOrder(t testing.TB, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Errorf("got %d deliveries, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("delivery %d is message %d (want %d): not exactly once in order; around it: %v", i, v, i, got[max(0, i-5):min(len(got), i+5)])
		}
	}
}

// checkContiguous fails unless got increases by exactly one at each step.
func checkContiguous(t testing.TB, got []int) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("delivery %d is message %d after %d: a gap or a reordering", i, got[i], got[i-1])
		}
	}
}
