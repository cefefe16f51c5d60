package delivery

// fifo is a queue that reuses its storage: popping from the front only
// moves an index, and pushing slides the live entries down instead of
// growing once at least half the storage is popped, so a queue of steady
// length allocates nothing in the steady state, and each entry is copied a
// bounded number of times on average.
// (Reslicing from the front, q = q[n:], gives up that room for good, and
// every append past the end then reallocates: a copy of the queue per
// window's worth of messages.)
type fifo[E any] struct {
	items []E
	head  int
}

func (q *fifo[E]) len() int { return len(q.items) - q.head }

// at returns the i-th entry from the front.
func (q *fifo[E]) at(i int) E { return q.items[q.head+i] }

// live returns the entries, oldest first, for reading.
func (q *fifo[E]) live() []E { return q.items[q.head:] }

func (q *fifo[E]) push(e E) {
	if len(q.items) == cap(q.items) && q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, e)
}

// drop removes the n oldest entries.
func (q *fifo[E]) drop(n int) {
	clear(q.items[q.head : q.head+n])
	q.head += n
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// reset empties the queue, keeping its storage.
func (q *fifo[E]) reset() {
	clear(q.items)
	q.items, q.head = q.items[:0], 0
}
