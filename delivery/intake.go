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
	mu      sync.Mutex
	pending []accepted
	next    SeqNr // the sequence number the next accepted message starts at
	limit   SeqNr // the highest sequence number the controller asks for
	err     error // set once the intake takes nothing more
	wake    chan struct{}
	demand  chan struct{} // closed when demand appears, then replaced
}

// accepted is a message taken from the application, already serialized.
type accepted struct {
	first   SeqNr // sequence number of its first chunk
	chunks  int
	payload []byte
	reply   *Confirmation // nil unless sent with confirmation
}

func newIntake(next, limit SeqNr) *intake {
	return &intake{next: next, limit: limit, wake: make(chan struct{}, 1), demand: make(chan struct{})}
}

// offer accepts a message when the controller asks for one. With wait, it
// waits for demand until ctx ends; without, it returns ErrNoDemand at once.
func (in *intake) offer(ctx context.Context, payload []byte, chunks int, withReply, wait bool) (SeqNr, *Confirmation, error) {
	for {
		in.mu.Lock()
		if in.err != nil {
			in.mu.Unlock()
			return 0, nil, in.err
		}
		if in.next <= in.limit {
			first := in.next
			last := first + SeqNr(chunks) - 1
			in.next = last + 1
			var reply *Confirmation
			if withReply {
				reply = newConfirmation(last)
			}
			in.pending = append(in.pending, accepted{first: first, chunks: chunks, payload: payload, reply: reply})
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

// setLimit tells waiting senders how far the controller asks for messages.
func (in *intake) setLimit(limit SeqNr) {
	in.mu.Lock()
	hadDemand := in.next <= in.limit
	in.limit = limit
	if !hadDemand && in.next <= limit {
		close(in.demand)
		in.demand = make(chan struct{})
	}
	in.mu.Unlock()
}

// demandNow reports how many sequence numbers the controller asks for and
// the intake has not filled.
func (in *intake) demandNow() SeqNr {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.next > in.limit {
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
