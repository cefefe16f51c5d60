package delivery

import (
	"context"
	"sync"
	"sync/atomic"
)

// readyQueue is the consumer controller's mailbox towards the application:
// complete messages wait in it in order, Receive takes them one by one and
// Confirm records, cumulatively, how far the application got. The
// controller is woken only when a confirmation reaches the sequence number
// it asked about (wakeAt), not on every one. Protocol state stays with the
// controller.
//
// The controller and the receivers meet once per batch of messages, not
// once per message: the controller appends to items under mu; a receiver
// that finds its own batch empty swaps items for it under mu, then takes
// messages from the batch under rmu, which the controller takes only to
// reset or close. Confirm takes no lock. Two goroutines on two cores taking
// one mutex per message kept its cache line moving between them, and cost
// more than everything else the application's side does.
type readyQueue struct {
	mu      sync.Mutex
	items   []readyMsg // pushed, not yet taken into the receivers' batch
	gen     *readyGen  // the numbering followed; written by the controller under mu
	err     error      // set when no more messages will come
	waiting bool       // a Receive waits on avail
	avail   chan struct{}

	rmu   sync.Mutex // taken before mu
	batch []readyMsg // batch[head:] are the next to hand out, of numbering bgen
	head  int
	bgen  *readyGen

	// waiting (the controller's readyState) is pushed - handed: pushed is
	// the controller's alone, handed counts messages handed out or dropped.
	pushed uint64
	handed atomic.Uint64

	wake chan struct{}
}

// readyGen is one numbering's confirmations. Deliveries point at theirs,
// so confirmations of an abandoned numbering land where no one looks.
type readyGen struct {
	q       *readyQueue
	id      producerIdentity
	confirm atomic.Uint64 // highest confirmed by the application
	wakeAt  atomic.Uint64 // wake the controller once confirm reaches it; 0: don't
}

type readyMsg struct {
	seqNr   SeqNr // of the message's last chunk
	payload []byte
	headers Headers // nil for none
}

func newReadyQueue() *readyQueue {
	q := &readyQueue{wake: make(chan struct{}, 1), avail: make(chan struct{})}
	q.gen = &readyGen{q: q}
	return q
}

// push appends complete messages of the current numbering, and returns
// msgs emptied to gather the next ones in. The controller's goroutine only.
func (q *readyQueue) push(msgs []readyMsg) []readyMsg {
	q.mu.Lock()
	q.pushed += uint64(len(msgs))
	q.items = append(q.items, msgs...)
	q.signalReceivers()
	q.mu.Unlock()
	clear(msgs)
	return msgs[:0]
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
func (q *readyQueue) pop(ctx context.Context) (readyMsg, *readyGen, error) {
	for {
		q.rmu.Lock()
		if q.head == len(q.batch) {
			// mu stays held from finding nothing to asking to be woken,
			// so that no push falls between.
			q.mu.Lock()
			if !q.refillLocked() {
				err, avail := q.err, q.avail
				if err == nil {
					q.waiting = true
				}
				q.mu.Unlock()
				q.rmu.Unlock()
				if err != nil {
					return readyMsg{}, nil, err
				}
				select {
				case <-avail:
					continue
				case <-ctx.Done():
					return readyMsg{}, nil, ctx.Err()
				}
			}
			q.mu.Unlock()
		}
		m, g := q.takeLocked()
		q.handed.Add(1)
		q.rmu.Unlock()
		return m, g, nil
	}
}

// takeEach hands f, one by one, up to max messages waiting, without
// waiting for more, and stops early when f returns false (f has taken the
// message it was given, either way). It returns how many f was given. f
// runs under q.rmu: other receivers wait for it.
func (q *readyQueue) takeEach(max int, f func(readyMsg, *readyGen) bool) int {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	n := 0
	for n < max {
		if q.head == len(q.batch) {
			q.mu.Lock()
			refilled := q.refillLocked()
			q.mu.Unlock()
			if !refilled {
				break
			}
		}
		n++
		if !f(q.takeLocked()) {
			break
		}
	}
	q.handed.Add(uint64(n))
	return n
}

// takeLocked takes the next message of the batch, which must hold one, and
// its numbering; q.rmu must be held. The caller counts it handed.
func (q *readyQueue) takeLocked() (readyMsg, *readyGen) {
	m := q.batch[q.head]
	q.batch[q.head] = readyMsg{}
	q.head++
	return m, q.bgen
}

// refillLocked makes everything pushed the receivers' batch, giving the
// controller the emptied batch's storage to push into; q.rmu and q.mu must
// be held, and the batch must be empty. It reports whether there was
// anything.
func (q *readyQueue) refillLocked() bool {
	if len(q.items) == 0 {
		return false
	}
	q.batch, q.items = q.items, q.batch[:0]
	q.head, q.bgen = 0, q.gen
	return true
}

// confirmUpTo records the application's confirmation of seqNr and every
// message handed before it.
func (g *readyGen) confirmUpTo(seqNr SeqNr) {
	for {
		c := g.confirm.Load()
		if uint64(seqNr) <= c {
			return
		}
		if g.confirm.CompareAndSwap(c, uint64(seqNr)) {
			break
		}
	}
	// The controller stores wakeAt, then loads confirm; this stores
	// confirm, then loads wakeAt: one of the two sees the other's store.
	if at := g.wakeAt.Load(); at != 0 && uint64(seqNr) >= at && g.wakeAt.CompareAndSwap(at, 0) {
		g.q.signalController()
	}
}

func (q *readyQueue) signalController() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// readyState is what the controller learns from the queue.
type readyState struct {
	confirmed SeqNr
	waiting   int // messages not yet handed to the application
}

// progress reads the application's progress; the controller's goroutine
// only.
func (q *readyQueue) progress() readyState {
	return readyState{confirmed: SeqNr(q.gen.confirm.Load()), waiting: int(q.pushed - q.handed.Load())}
}

// sync reads the application's progress and sets the sequence number whose
// confirmation should wake the controller next (0: none). It reports a wake
// at once if that confirmation has already happened. The controller's
// goroutine only.
func (q *readyQueue) sync(wakeAt SeqNr) readyState {
	g := q.gen
	g.wakeAt.Store(uint64(wakeAt))
	if wakeAt != 0 && g.confirm.Load() >= uint64(wakeAt) && g.wakeAt.CompareAndSwap(uint64(wakeAt), 0) {
		q.signalController()
	}
	return q.progress()
}

// reset starts a new numbering, of producer id, that begins after base.
// Messages of the old one not yet handed out are dropped. The controller's
// goroutine only.
func (q *readyQueue) reset(id producerIdentity, base SeqNr) {
	q.rmu.Lock()
	q.mu.Lock()
	q.dropLocked()
	g := &readyGen{q: q, id: id}
	g.confirm.Store(uint64(base))
	q.gen = g
	q.mu.Unlock()
	q.rmu.Unlock()
}

// dropLocked drops every message not handed out; q.rmu and q.mu must be
// held.
func (q *readyQueue) dropLocked() {
	q.handed.Add(uint64(len(q.items) + len(q.batch) - q.head))
	clear(q.items)
	clear(q.batch)
	q.items, q.batch, q.head = q.items[:0], q.batch[:0], 0
}

// close makes Receive return err once the queue is empty; with discard, at
// once.
func (q *readyQueue) close(err error, discard bool) {
	q.rmu.Lock()
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	if discard {
		q.dropLocked()
	}
	q.waiting = true // wake every waiting Receive so it sees err
	q.signalReceivers()
	q.mu.Unlock()
	q.rmu.Unlock()
}
