package workload

import (
	"slices"
	"sync/atomic"
	"time"
)

// Tally counts the Messages numbered 1 to count that a consumer received:
// how many distinct ones, how many repeats, and how long each took from
// its making to its receipt. Add is called from one goroutine at a time;
// the counts may be read from any.
type Tally struct {
	seen       []bool
	distinct   atomic.Int64
	delivered  atomic.Int64
	duplicates atomic.Int64
	malformed  atomic.Int64
	latencies  []time.Duration
}

// maxLatencies bounds the latencies a Tally keeps (8 MiB of them).
const maxLatencies = 1 << 20

// NewTally returns a tally of Messages 1 to count.
func NewTally(count int) *Tally {
	return &Tally{seen: make([]bool, count+1), latencies: make([]time.Duration, 0, min(count, maxLatencies))}
}

// Add counts msg, received at now.
func (t *Tally) Add(msg []byte, now time.Time) {
	t.delivered.Add(1)
	i, at, ok := Parse(msg)
	if !ok || i < 1 || i >= len(t.seen) {
		t.malformed.Add(1)
		return
	}
	if t.seen[i] {
		t.duplicates.Add(1)
		return
	}
	t.seen[i] = true
	t.distinct.Add(1)
	if len(t.latencies) < cap(t.latencies) {
		t.latencies = append(t.latencies, now.Sub(at))
	}
}

// Count is how many Messages the tally expects.
func (t *Tally) Count() int { return len(t.seen) - 1 }

// Distinct is how many of them arrived.
func (t *Tally) Distinct() int64 { return t.distinct.Load() }

// Delivered is how many messages arrived, repeats and malformed ones
// included.
func (t *Tally) Delivered() int64 { return t.delivered.Load() }

// Duplicates is how many arrived again.
func (t *Tally) Duplicates() int64 { return t.duplicates.Load() }

// Malformed is how many were not Messages of this tally.
func (t *Tally) Malformed() int64 { return t.malformed.Load() }

// Lost is how many have not arrived.
func (t *Tally) Lost() int { return t.Count() - int(t.Distinct()) }

// Latencies returns a copy of the latencies measured so far. Call it from
// Add's goroutine, or under the lock that guards Add.
func (t *Tally) Latencies() []time.Duration { return slices.Clone(t.latencies) }

// ForgetLatencies drops the latencies measured so far: a warm-up's. Call it
// as Latencies.
func (t *Tally) ForgetLatencies() { t.latencies = t.latencies[:0] }
