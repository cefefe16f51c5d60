package delivery

import (
	"context"
	"fmt"
	"time"
)

// storePipe runs the producer's durable queue in a goroutine of its own, so
// that the controller never waits on a sync. The controller gathers in
// pending every message it takes and the latest confirmation, and hands the
// whole of it over whenever the storer is idle: one transaction and one
// sync for everything taken since the last one (group commit). While a sync
// runs, the next batch gathers.
type storePipe struct {
	q       DurableQueue
	pending *storeJob
	busy    bool // a job is with the storer
	jobs    chan *storeJob
	results chan storeResult
	done    chan struct{} // closed when the storer returns
}

type storeJob struct {
	update DurableUpdate
	upTo   SeqNr // the highest message in the update (0: none)
}

type storeResult struct {
	upTo SeqNr
	err  error
}

func startStorePipe(q DurableQueue) *storePipe {
	p := &storePipe{q: q, jobs: make(chan *storeJob), results: make(chan storeResult, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for job := range p.jobs {
			p.results <- storeResult{upTo: job.upTo, err: q.Store(context.Background(), job.update)}
		}
	}()
	return p
}

func (p *storePipe) job() *storeJob {
	if p.pending == nil {
		p.pending = &storeJob{}
	}
	return p.pending
}

// add gathers a message for the next store.
func (p *storePipe) add(m StoredMessage) {
	j := p.job()
	j.update.Messages = append(j.update.Messages, m)
	j.upTo = m.SeqNr
}

// confirm gathers the consumer's confirmation for the next store.
func (p *storePipe) confirm(seqNr SeqNr) { p.job().update.Confirmed = seqNr }

// offer returns the channel and job for the controller's select: a job is
// offered while there is one and the storer is idle. A nil pipe offers
// nothing.
func (p *storePipe) offer() (chan<- *storeJob, *storeJob, <-chan storeResult) {
	if p == nil {
		return nil, nil, nil
	}
	if p.pending == nil || p.busy {
		return nil, nil, p.results
	}
	return p.jobs, p.pending, p.results
}

func (p *storePipe) handedOff() { p.pending, p.busy = nil, true }

// finish waits for the storer, stores what is still pending, and stops it.
func (p *storePipe) finish() error {
	var err error
	if p.busy {
		err = (<-p.results).err
	}
	close(p.jobs)
	<-p.done
	if p.pending != nil && err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = p.q.Store(ctx, p.pending.update)
	}
	return err
}

// onStored takes a finished store: what it made durable may be sent now.
func (r *producerRun[T]) onStored(res storeResult) error {
	r.store.busy = false
	if res.err != nil {
		return fmt.Errorf("%w: store: %w", ErrDurableQueue, res.err)
	}
	if res.upTo > r.stored {
		r.stored = res.upTo
		r.p.stats.stored.Store(uint64(r.stored))
		r.storeWaits.resolveUpTo(r.stored, func(c *Confirmation) { c.resolveStored(nil) })
	}
	return nil
}

// recover loads the durable queue and takes up where the last lifetime
// stopped: what it held unconfirmed is held again, to be resent from the
// oldest, marked first; numbering goes on after the last whole message; the
// epoch goes above the stored one. A message stored in part is dropped.
func (r *producerRun[T]) recover(ctx context.Context) error {
	q := r.s.DurableQueue
	st, err := q.Load(ctx)
	if err != nil {
		return fmt.Errorf("%w: load: %w", ErrDurableQueue, err)
	}
	keep, discardFrom := recoverMessages(st.Confirmed, st.Messages)
	r.epoch = max(r.epoch, st.Epoch+1)
	if err := q.Store(ctx, DurableUpdate{Epoch: r.epoch, DiscardFrom: discardFrom}); err != nil {
		return fmt.Errorf("%w: store the new epoch: %w", ErrDurableQueue, err)
	}
	r.p.epoch.Store(r.epoch) // before the intake opens below
	r.confirmed = st.Confirmed
	r.heldStart = st.Confirmed + 1
	r.accepted = st.Confirmed
	if len(keep) > 0 {
		r.heldStart = keep[0].SeqNr
		first := 0 // the entry of the message's first chunk, which knows its size
		var arena []Header
		for _, m := range keep {
			var e entry
			if m.FirstChunk {
				e.flags |= flagFirstChunk
				first = len(r.held)
			}
			if m.LastChunk {
				e.flags |= flagLastChunk
			}
			if e.headers, err = storedHeaders(m.Headers, &arena); err != nil {
				return fmt.Errorf("%w: message %d: %w", ErrDurableQueue, m.SeqNr, err)
			}
			e.payload = m.Payload
			r.held = append(r.held, e)
			r.held[first].size += len(m.Payload)
			r.heldBytes += len(m.Payload)
		}
		r.accepted = keep[len(keep)-1].SeqNr
	}
	// Nothing of this lifetime is sent yet; the first message held, or the
	// first one taken if none is, starts the numbering and may go unasked.
	// So the window's end is never behind the numbering (pekko #2760).
	r.sent = r.heldStart - 1
	r.stored = r.accepted
	r.firstSeqNr = r.heldStart
	r.requested = r.firstSeqNr
	r.limit = r.requested
	r.p.intake.restart(r.accepted+1, r.requested, r.heldBytes)
	r.p.stats.confirmed.Store(uint64(r.confirmed))
	r.p.stats.accepted.Store(uint64(r.accepted))
	r.p.stats.stored.Store(uint64(r.stored))
	r.p.stats.heldBytes.Store(int64(r.heldBytes))
	r.s.Logger.Info("recovered the durable queue",
		"producer_id", r.s.ProducerID, "epoch", r.epoch, "confirmed", st.Confirmed,
		"messages", len(keep), "resend_from", r.firstSeqNr, "discarded_from", discardFrom)
	return nil
}

// waiters are confirmations waiting for a sequence number to be reached,
// oldest first.
type waiters struct {
	q    []*Confirmation
	head int
}

func (w *waiters) add(c *Confirmation) { w.q = append(w.q, c) }

// resolveUpTo calls f for, and forgets, every waiter up to seqNr.
func (w *waiters) resolveUpTo(seqNr SeqNr, f func(*Confirmation)) {
	for w.head < len(w.q) && w.q[w.head].seqNr <= seqNr {
		f(w.q[w.head])
		w.q[w.head] = nil
		w.head++
	}
	if w.head == len(w.q) {
		w.q, w.head = w.q[:0], 0
	}
}
