package delivery

import (
	"context"
	"sync"
)

// intake is the producer controller's mailbox for messages from the
// application. Senders wait in it until the controller asks for more (the
// consumer's window has room); accepted messages are numbered here, in the
// order they are accepted, and the controller takes them in batches. The
// mutex guards the mailbox only: protocol state stays with the controller.
type intake struct {
	mu       sync.Mutex
	pending  []accepted
	next     SeqNr // the sequence number the next accepted message starts at
	limit    SeqNr // the highest sequence number the controller asks for
	bytes    int   // payload bytes accepted and not yet released by the controller
	maxBytes int   // no demand while bytes reaches this
	maxMsg   int   // the largest message taken: the producer's, or its consumer's if smaller
	err      error // set once the intake takes nothing more
	wake     chan struct{}
	demand   chan struct{} // closed when demand appears, then replaced
}

// accepted is a message taken from the application, already serialized.
type accepted struct {
	first    SeqNr // sequence number of its first chunk
	chunks   int
	firstLen int // payload bytes in the first chunk; the others hold ChunkSize each, the last the rest
	payload  []byte
	headers  Headers       // checked; kept, as given, until confirmed
	reply    *Confirmation // nil unless sent with confirmation
}

func newIntake(next, limit SeqNr, maxBytes, maxMsg int) *intake {
	return &intake{next: next, limit: limit, maxBytes: maxBytes, maxMsg: maxMsg, wake: make(chan struct{}, 1), demand: make(chan struct{})}
}

// hasDemand reports whether a message would be accepted now; in.mu held.
// A message is accepted while the bytes held are under the bound, so one
// large message can go over it, but none follows until room is released.
func (in *intake) hasDemand() bool {
	return in.next <= in.limit && in.bytes < in.maxBytes
}

// update changes the intake's state under its lock and wakes waiting
// senders if demand appeared.
func (in *intake) update(change func()) {
	in.mu.Lock()
	had := in.hasDemand()
	change()
	if !had && in.hasDemand() && in.err == nil {
		close(in.demand)
		in.demand = make(chan struct{})
	}
	in.mu.Unlock()
}

// offer accepts a message when the controller asks for one. With wait, it
// waits for demand until ctx ends; without, it returns ErrNoDemand at once.
func (in *intake) offer(ctx context.Context, a accepted, withReply, wait bool) (SeqNr, *Confirmation, error) {
	payload, chunks := a.payload, a.chunks
	for {
		in.mu.Lock()
		if in.err != nil {
			in.mu.Unlock()
			return 0, nil, in.err
		}
		if len(payload) > in.maxMsg {
			limit := in.maxMsg
			in.mu.Unlock()
			return 0, nil, &MessageTooLargeError{Size: len(payload), Limit: limit}
		}
		if in.hasDemand() {
			first := in.next
			last := first + SeqNr(chunks) - 1
			in.next = last + 1
			in.bytes += len(payload)
			var reply *Confirmation
			if withReply {
				reply = newConfirmation(last)
			}
			a.first, a.reply = first, reply
			in.pending = append(in.pending, a)
			wasEmpty := len(in.pending) == 1
			in.mu.Unlock()
			if wasEmpty {
				select {
				case in.wake <- struct{}{}:
				default:
				}
			}
			return last, reply, nil
		}
		if !wait {
			in.mu.Unlock()
			return 0, nil, ErrNoDemand
		}
		demand := in.demand
		in.mu.Unlock()
		select {
		case <-demand:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// take hands the controller everything accepted since the last take.
// processed is the slice from the previous take, handed back for reuse.
func (in *intake) take(processed []accepted) []accepted {
	clear(processed)
	in.mu.Lock()
	batch := in.pending
	in.pending = processed[:0]
	in.mu.Unlock()
	return batch
}

// setMaxBytes bounds the payload bytes held, taken and not released.
func (in *intake) setMaxBytes(n int) { in.update(func() { in.maxBytes = n }) }

// setMaxMessage lowers (or raises, up to the producer's own) the largest
// message taken, to what the consumer takes.
func (in *intake) setMaxMessage(n int) { in.update(func() { in.maxMsg = n }) }

// setLimit tells waiting senders how far the controller asks for messages.
func (in *intake) setLimit(limit SeqNr) { in.update(func() { in.limit = limit }) }

// release returns the room of payload bytes the controller no longer holds.
func (in *intake) release(bytes int) { in.update(func() { in.bytes -= bytes }) }

// restart renumbers the intake after a recovery: the next message starts at
// next, the controller asks up to limit, and already holds bytes.
func (in *intake) restart(next, limit SeqNr, bytes int) {
	in.update(func() { in.next, in.limit, in.bytes = next, limit, bytes })
}

// limitNow reports the limit as last set.
func (in *intake) limitNow() SeqNr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.limit
}

// demandNow reports how many sequence numbers the controller asks for and
// the intake has not filled.
func (in *intake) demandNow() SeqNr {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.hasDemand() {
		return 0
	}
	return in.limit - in.next + 1
}

// close makes the intake refuse everything from now on with err and wakes
// the waiting senders. It returns what was accepted and not yet taken.
func (in *intake) close(err error) []accepted {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err == nil {
		in.err = err
		close(in.demand)
	}
	batch := in.pending
	in.pending = nil
	return batch
}
