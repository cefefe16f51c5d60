package delivery

import (
	"context"
	"sync"
)

// readyQueue is the consumer controller's mailbox towards the application:
// complete messages wait in it in order, Receive takes them one by one and
// Confirm records, cumulatively, how far the application got. The
// controller is woken only when a confirmation reaches the sequence number
// it asked about (wakeAt), not on every one. The mutex guards the mailbox
// only: protocol state stays with the controller.
type readyQueue struct {
	mu      sync.Mutex
	items   []readyMsg
	head    int
	gen     uint64           // numbering generation; confirmations of older ones are ignored
	id      producerIdentity // producer of this generation
	handed  SeqNr            // highest handed to the application in this generation
	confirm SeqNr            // highest confirmed by the application in this generation
	wakeAt  SeqNr            // wake the controller once confirm reaches it; 0: don't
	err     error            // set when no more messages will come
	waiting bool             // a Receive waits on avail
	wake    chan struct{}
	avail   chan struct{} // closed when items arrive for a waiting Receive
}

type readyMsg struct {
	seqNr   SeqNr // of the message's last chunk
	payload []byte
	headers Headers // nil for none
}

func newReadyQueue() *readyQueue {
	return &readyQueue{wake: make(chan struct{}, 1), avail: make(chan struct{})}
}

// push appends complete messages of the current generation.
func (q *readyQueue) push(msgs []readyMsg) {
	q.mu.Lock()
	q.items = append(q.items, msgs...)
	q.signalReceivers()
	q.mu.Unlock()
}

func (q *readyQueue) signalReceivers() {
	if q.waiting {
		q.waiting = false
		close(q.avail)
		q.avail = make(chan struct{})
	}
}

// pop hands the next message to the application, waiting until there is one,
// ctx ends or the queue is closed and empty.
func (q *readyQueue) pop(ctx context.Context) (readyMsg, uint64, producerIdentity, error) {
	for {
		q.mu.Lock()
		if m, ok := q.takeLocked(); ok {
			gen, id := q.gen, q.id
			q.mu.Unlock()
			return m, gen, id, nil
		}
		if q.err != nil {
			err := q.err
			q.mu.Unlock()
			return readyMsg{}, 0, producerIdentity{}, err
		}
		q.waiting = true
		avail := q.avail
		q.mu.Unlock()
		select {
		case <-avail:
		case <-ctx.Done():
			return readyMsg{}, 0, producerIdentity{}, ctx.Err()
		}
	}
}

// tryPop hands out the next message if one is waiting.
func (q *readyQueue) tryPop() (readyMsg, uint64, producerIdentity, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.takeLocked()
	return m, q.gen, q.id, ok
}

// takeLocked takes the next message, if any; q.mu must be held.
func (q *readyQueue) takeLocked() (readyMsg, bool) {
	if q.head == len(q.items) {
		return readyMsg{}, false
	}
	m := q.items[q.head]
	q.items[q.head] = readyMsg{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.handed = m.seqNr
	return m, true
}

// confirmUpTo records the application's confirmation of seqNr and every
// message handed before it.
func (q *readyQueue) confirmUpTo(gen uint64, seqNr SeqNr) {
	q.mu.Lock()
	if gen == q.gen && seqNr > q.confirm && seqNr <= q.handed {
		q.confirm = seqNr
		if q.wakeAt != 0 && seqNr >= q.wakeAt {
			q.wakeAt = 0
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	}
	q.mu.Unlock()
}

// readyState is what the controller learns from the queue.
type readyState struct {
	confirmed SeqNr
	waiting   int // messages not yet handed to the application
}

// progress reads the application's progress.
func (q *readyQueue) progress() readyState {
	q.mu.Lock()
	defer q.mu.Unlock()
	return readyState{confirmed: q.confirm, waiting: len(q.items) - q.head}
}

// sync reads the application's progress and sets the sequence number whose
// confirmation should wake the controller next (0: none). It reports a wake
// at once if that confirmation has already happened.
func (q *readyQueue) sync(wakeAt SeqNr) readyState {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wakeAt = wakeAt
	if wakeAt != 0 && q.confirm >= wakeAt {
		q.wakeAt = 0
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return readyState{confirmed: q.confirm, waiting: len(q.items) - q.head}
}

// reset starts a new generation: a new producer numbering that begins after
// base. Messages of the old one not yet handed out are dropped.
func (q *readyQueue) reset(gen uint64, id producerIdentity, base SeqNr) {
	q.mu.Lock()
	clear(q.items)
	q.items, q.head = q.items[:0], 0
	q.gen, q.id = gen, id
	q.handed, q.confirm, q.wakeAt = base, base, 0
	q.mu.Unlock()
}

// close makes Receive return err once the queue is empty; with discard, at
// once.
func (q *readyQueue) close(err error, discard bool) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	if discard {
		clear(q.items)
		q.items, q.head = q.items[:0], 0
	}
	q.waiting = true // wake every waiting Receive so it sees err
	q.signalReceivers()
	q.mu.Unlock()
}
