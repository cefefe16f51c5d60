package bench

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridge-mq/bridge/bridge/internal/workload"
)

// workTally is what the workers of one work-pulling pass did: each worker
// spends the sink's cost on a message, then records it here before it
// acknowledges it (so a worker killed between the two leaves a message
// that comes again: a duplicate, as a real sink would see it).
type workTally struct {
	cost time.Duration

	mu         sync.Mutex
	seen       []uint8 // deliveries of message i (1-based), saturating
	distinct   int
	duplicates int
	last       map[int]int // the last message of each order key
	outOfOrder int
	latencies  []time.Duration
	lastAt     time.Time

	target  int           // distinct messages that end the pass
	reached chan struct{} // closed when target is reached
	killAt  int           // distinct messages after which a worker is killed; 0 for none
	killNow chan struct{} // closed when killAt is reached
	killed  []atomic.Bool // by worker
}

func newWorkTally(n, workers, killAt int, cost time.Duration) *workTally {
	return &workTally{cost: cost, seen: make([]uint8, n+1), last: map[int]int{}, target: n, reached: make(chan struct{}),
		killAt: killAt, killNow: make(chan struct{}), killed: make([]atomic.Bool, workers)}
}

// work is a worker's sink: it spends the cost on msg, then records it under
// order key key (the worker, or a Kafka partition), unless the worker was
// killed meanwhile. It says whether the worker should acknowledge msg.
func (t *workTally) work(worker, key int, msg []byte) bool {
	if t.killed[worker].Load() {
		return false
	}
	time.Sleep(t.cost) // the sink's cost: the work a message asks for
	if t.killed[worker].Load() {
		return false
	}
	t.record(key, msg, time.Now())
	return true
}

func (t *workTally) record(key int, msg []byte, now time.Time) {
	i, at, ok := workload.Parse(msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok || i < 1 || i >= len(t.seen) {
		return // not the bench's: counted nowhere, so it shows as lost
	}
	t.lastAt = now
	if prev, ok := t.last[key]; ok && i < prev {
		t.outOfOrder++
	}
	t.last[key] = i
	if t.seen[i] > 0 {
		t.duplicates++
		if t.seen[i] < 255 {
			t.seen[i]++
		}
		return
	}
	t.seen[i] = 1
	t.distinct++
	t.latencies = append(t.latencies, now.Sub(at))
	if t.distinct == t.killAt {
		close(t.killNow)
	}
	if t.distinct == t.target {
		close(t.reached)
	}
}

// kill marks worker as dead: it handles nothing more.
func (t *workTally) kill(worker int) { t.killed[worker].Store(true) }

func (t *workTally) snapshot() (distinct, duplicates, outOfOrder int, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.distinct, t.duplicates, t.outOfOrder, t.lastAt
}
