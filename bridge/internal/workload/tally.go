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
func (t *Tally) Add(msg []byte, now time.Time) { t.AddAll([][]byte{msg}, now) }

// AddAll counts msgs, all received at now, updating the counts once for
// all of them: a consumer that receives in batches pays the atomic
// updates once a batch rather than once a message.
func (t *Tally) AddAll(msgs [][]byte, now time.Time) {
	var distinct, duplicates, malformed int64
	for _, msg := range msgs {
		i, at, ok := Parse(msg)
		switch {
		case !ok || i < 1 || i >= len(t.seen):
			malformed++
		case t.seen[i]:
			duplicates++
		default:
			t.seen[i] = true
			distinct++
			if len(t.latencies) < cap(t.latencies) {
				t.latencies = append(t.latencies, now.Sub(at))
			}
		}
	}
	t.delivered.Add(int64(len(msgs)))
	if malformed > 0 {
		t.malformed.Add(malformed)
	}
	if duplicates > 0 {
		t.duplicates.Add(duplicates)
	}
	if distinct > 0 {
		t.distinct.Add(distinct)
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
