package delivery_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/delivery"
)

// Timings for tests: short enough that a lost tail is recovered in
// milliseconds.
var (
	fastProducer = delivery.ProducerSettings{FirstResendInterval: 5 * time.Millisecond}
	fastConsumer = delivery.ConsumerSettings{ResendMin: 5 * time.Millisecond, ResendMax: 40 * time.Millisecond}
)

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
		i, err := adaptertest.Index(d.Message)
		if err != nil {
			return got, err
		}
		got = append(got, i)
		seen[i] = true
		d.Confirm()
	}
	return got, nil
}
