package delivery

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// wpStore runs a work-pulling producer's durable queue in a goroutine of
// its own, as storePipe does for a point-to-point one: what the controller
// takes and what its workers confirm gathers in one update, stored in one
// transaction whenever the storer is free. Messages are whole (one key per
// message, however it is chunked on a worker's stream) and confirmations
// come in any order: each is dropped by number (DurableUpdate.Drop), and
// Confirmed follows the oldest message still open.
type wpStore struct {
	q DurableQueue

	mu      sync.Mutex
	pending DurableUpdate
	waits   []*Confirmation // Stored once the pending update is

	wake   chan struct{}
	failed chan error
	stop   chan struct{}
	done   chan struct{}
}

func newWPStore(q DurableQueue) *wpStore {
	return &wpStore{q: q, wake: make(chan struct{}, 1), failed: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *wpStore) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *wpStore) add(m StoredMessage, reply *Confirmation) {
	s.mu.Lock()
	s.pending.Messages = append(s.pending.Messages, m)
	if reply != nil {
		s.waits = append(s.waits, reply)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *wpStore) confirm(seqNr, watermark SeqNr) {
	s.mu.Lock()
	s.pending.Drop = append(s.pending.Drop, seqNr)
	s.pending.Confirmed = max(s.pending.Confirmed, watermark)
	s.mu.Unlock()
	s.poke()
}

func (s *wpStore) setEpoch(epoch uint64) {
	s.mu.Lock()
	s.pending.Epoch = epoch
	s.mu.Unlock()
	s.poke()
}

func (s *wpStore) takePending() (DurableUpdate, []*Confirmation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, waits := s.pending, s.waits
	s.pending, s.waits = DurableUpdate{}, nil
	empty := u.Epoch == 0 && len(u.Messages) == 0 && len(u.Drop) == 0 && u.Confirmed == 0
	return u, waits, !empty
}

// start runs the storer until finish.
func (s *wpStore) start() {
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.wake:
			case <-s.stop:
				return
			}
			u, waits, ok := s.takePending()
			if !ok {
				continue
			}
			if err := s.q.Store(context.Background(), u); err != nil {
				err = fmt.Errorf("%w: store: %w", ErrDurableQueue, err)
				for _, c := range waits {
					c.resolveStored(err)
				}
				s.failed <- err
				return
			}
			for _, c := range waits {
				c.resolveStored(nil)
			}
		}
	}()
}

// finish stops the storer and stores what is still pending, so that a
// closed producer loses nothing either.
func (s *wpStore) finish() error {
	close(s.stop)
	<-s.done
	u, waits, ok := s.takePending()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.q.Store(ctx, u)
	for _, c := range waits {
		if err != nil {
			c.resolveStored(fmt.Errorf("%w: store: %w", ErrDurableQueue, err))
		} else {
			c.resolveStored(nil)
		}
	}
	return err
}

// recover loads the durable queue: every message it holds is handed out
// again, to the workers present, before any new one.
func (w *WorkPullingProducerController[T]) recover(ctx context.Context) error {
	st, err := w.s.DurableQueue.Load(ctx)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrDurableQueue, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	last := st.Confirmed
	var arena []Header
	for _, sm := range st.Messages {
		if !sm.FirstChunk || !sm.LastChunk {
			return fmt.Errorf("%w: message %d is a chunk: the queue is a point-to-point producer's; a work-pulling producer needs a queue of its own", ErrDurableQueue, sm.SeqNr)
		}
		if sm.SeqNr <= st.Confirmed {
			continue
		}
		headers, err := storedHeaders(sm.Headers, &arena)
		if err != nil {
			return fmt.Errorf("%w: message %d: %w", ErrDurableQueue, sm.SeqNr, err)
		}
		m := &wpMsg{seqNr: sm.SeqNr, payload: sm.Payload, headers: headers}
		w.taken = append(w.taken, m)
		w.requeue = append(w.requeue, m)
		last = max(last, sm.SeqNr)
	}
	w.open = len(w.taken)
	w.next = last + 1
	w.epoch = max(w.epoch, st.Epoch)
	w.ready = true
	w.broadcastLocked()
	w.log.Info("recovered the durable queue", "confirmed", st.Confirmed, "messages", len(w.taken), "next_seq_nr", w.next)
	return nil
}
