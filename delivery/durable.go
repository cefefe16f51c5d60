package delivery

import (
	"context"
	"errors"
)

// DurableQueue keeps a producer's messages on disk so that they survive its
// process: the controller loads it when it starts, stores every message
// before sending it, and stores how far the consumer confirmed, which drops
// the confirmed messages. With one, a producer killed and restarted on the
// same queue resends what was not confirmed and loses nothing (at least
// once). delivery/durable implements it on bbolt.
//
// The controller calls Load once, then Store from one goroutine at a time,
// then Close; an implementation need not be safe for concurrent use.
type DurableQueue interface {
	// Load returns what an earlier lifetime stored. An empty queue returns
	// the zero DurableState. An unreadable queue is an error: a controller
	// never starts empty on a queue it could not read.
	Load(ctx context.Context) (DurableState, error)

	// Store applies u in one transaction and makes it durable before it
	// returns (one sync for the whole update: the controller gathers every
	// message taken since the last Store into one).
	Store(ctx context.Context, u DurableUpdate) error

	// Close releases the queue. The controller that owns the queue closes
	// it when it stops.
	Close() error
}

// DurableState is what a DurableQueue holds.
type DurableState struct {
	// Epoch is the epoch of the lifetime that last stored; the next one
	// takes a larger epoch, so consumers follow it whatever the clock says.
	Epoch uint64
	// Confirmed is the highest sequence number the consumer confirmed.
	Confirmed SeqNr
	// Messages are the stored messages above Confirmed, in order.
	Messages []StoredMessage
}

// StoredMessage is one sequenced message (a whole message, or one chunk of
// a large one) as kept in a DurableQueue.
type StoredMessage struct {
	SeqNr      SeqNr
	FirstChunk bool // the first (or only) piece of a message
	LastChunk  bool // the last (or only) piece of a message
	// Headers are the message's headers, on its first chunk, encoded as
	// the protocol encodes them: a queue keeps them as bytes it need not
	// read. nil for none.
	Headers []byte
	Payload []byte
}

// DurableUpdate is one Store: everything to make durable at once.
type DurableUpdate struct {
	// Epoch, when not 0, replaces the stored epoch.
	Epoch uint64
	// Messages to add, in order.
	Messages []StoredMessage
	// Confirmed, when above the stored one, replaces it; every stored
	// message up to it is dropped.
	Confirmed SeqNr
	// DiscardFrom, when not 0, drops every stored message from this
	// sequence number on (what recovery found incomplete).
	DiscardFrom SeqNr
	// Drop lists stored messages to drop one by one, above Confirmed:
	// confirmations out of order, as a work-pulling producer's workers give
	// them. A point-to-point producer never sets it. A queue that ignores it
	// loses nothing, but resends those messages after a restart.
	Drop []SeqNr
}

// ErrDurableQueue marks a failure of the durable queue: the producer
// controller stops with it (wrapped), since it can no longer promise that
// what it took survives a crash. Whether it is worth retrying depends on
// the cause (a full disk, say) once it is fixed.
var ErrDurableQueue = errors.New("delivery: durable queue")

// recoverMessages keeps the messages of a loaded state that form whole
// messages above confirmed, contiguous from the first: a message stored in
// part (its first chunk missing, or its last) cannot be resent whole, and a
// gap would leave the consumer waiting forever for what cannot come. It
// returns what to keep and the first sequence number of what to discard
// (0: nothing).
func recoverMessages(confirmed SeqNr, msgs []StoredMessage) (keep []StoredMessage, discardFrom SeqNr) {
	start := 0
	for start < len(msgs) && (msgs[start].SeqNr <= confirmed || !msgs[start].FirstChunk) {
		start++ // confirmed already, or the tail of a message whose start was dropped
	}
	end := start // one past the last whole message
	for i := start; i < len(msgs); i++ {
		if i > start && msgs[i].SeqNr != msgs[i-1].SeqNr+1 {
			break
		}
		if msgs[i].LastChunk {
			end = i + 1
		}
	}
	if end < len(msgs) {
		discardFrom = msgs[end].SeqNr
	}
	return msgs[start:end], discardFrom
}
