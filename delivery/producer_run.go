package delivery

import (
	"context"
	"time"
)

// producerRun is the state of one run of a ProducerController. Only the
// controller goroutine (run) touches it.
type producerRun[T any] struct {
	p    *ProducerController[T]
	s    ProducerSettings
	pump *pump
	out  outbox

	epoch         uint64 // this lifetime's: the settings', or above the durable queue's
	consumerEpoch uint64 // the consumer incarnation we answer; 0 before any
	// firstSeqNr is the number marked first: where a consumer without a
	// numbering starts. awaitingFirst holds until the consumer answers.
	firstSeqNr    SeqNr
	awaitingFirst bool

	confirmed SeqNr // highest confirmed by the consumer
	sent      SeqNr // highest sent (resends do not move it)
	requested SeqNr // highest the consumer lets us send
	accepted  SeqNr // highest taken from the application
	stored    SeqNr // highest durably stored (accepted, without a durable queue); only these are sent
	// resendSupported is false once an only-flow-control consumer says so;
	// then nothing is kept once sent.
	resendSupported bool

	// held keeps the messages from heldStart on: in resend mode every one
	// not confirmed, otherwise every one not sent.
	held      []entry
	heldHead  int
	heldStart SeqNr
	heldBytes int

	replies    waiters // confirmations waiting for the consumer
	storeWaits waiters // confirmations waiting for the durable queue
	store      *storePipe

	batch      []accepted // the last intake batch, handed back for reuse
	limit      SeqNr      // the intake's limit as last set
	firstTimer *time.Timer
	firstArmed bool
	draining   bool
}

// maxBacklog is how many frames the producer builds ahead of its writer:
// enough that the writer never waits (16 measured fastest, above no bound at
// all), few enough that the first frame leaves early.
const maxBacklog = 16

// entry is one sequenced message (a whole message or one chunk).
type entry struct {
	flags   byte // flagFirstChunk, flagLastChunk, flagAck
	payload []byte
}

func newProducerRun[T any](p *ProducerController[T]) *producerRun[T] {
	return &producerRun[T]{
		p:               p,
		s:               p.settings,
		epoch:           p.settings.Epoch,
		out:             outbox{max: p.settings.MaxFrameSize},
		firstSeqNr:      1,
		awaitingFirst:   true,
		requested:       1,
		resendSupported: true,
		heldStart:       1,
		limit:           p.intake.limitNow(),
	}
}

func (r *producerRun[T]) run(ctx context.Context) (err error) {
	if r.s.DurableQueue != nil {
		if err := r.recover(ctx); err != nil {
			r.s.DurableQueue.Close()
			r.p.link.Close()
			r.failPending()
			return err
		}
		r.store = startStorePipe(r.s.DurableQueue)
	}
	r.p.epoch.Store(r.epoch)
	r.pump = newPump(r.p.link, controlFrame, r.s.Logger, &r.p.stats.linkCounters)
	pumpCtx, cancelPump := context.WithCancel(context.Background())
	r.pump.start(pumpCtx)
	r.firstTimer = time.NewTimer(time.Hour)
	r.firstTimer.Stop()
	defer r.firstTimer.Stop()
	log := r.s.Logger.With("producer_id", r.s.ProducerID, "epoch", r.epoch)
	log.Debug("producer controller started")

	life := &r.p.life
	drain := life.drain
loop:
	for {
		var toWriter chan<- []byte
		frame := r.out.next()
		if frame != nil {
			toWriter = r.pump.out
		}
		toStore, job, stored := r.store.offer()
		select {
		case <-r.p.intake.wake:
			r.takeIntake(r.p.intake.take(r.batch))
		case f := <-r.pump.in:
			r.onControlFrame(f)
			f.doRelease()
		case toWriter <- frame:
			r.out.taken()
		case toStore <- job:
			r.store.handedOff()
		case res := <-stored:
			if err = r.onStored(res); err != nil {
				log.Error("durable queue failed; producer controller stops", "err", err)
				break loop
			}
		case <-r.firstTimer.C:
			r.firstArmed = false
			r.resendFirst()
		case <-drain:
			drain = nil
			r.draining = true
			r.takeIntake(r.p.intake.close(ErrClosed))
		case err = <-r.pump.fatal:
			log.Error("link failed; producer controller stops", "err", err)
			break loop
		case <-life.quit:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
		r.sendMore()
		if r.draining && r.confirmed >= r.accepted {
			break loop
		}
	}

	// A graceful stop has nothing left to send: everything is confirmed.
	cancelPump()
	r.pump.wait()
	r.p.link.Close()
	if r.store != nil {
		// What was taken and not yet stored is stored now, so a restart
		// resends it: a closed producer loses nothing either.
		if serr := r.store.finish(); serr != nil {
			log.Error("durable queue: storing on the way out failed", "err", serr)
		}
		r.s.DurableQueue.Close()
	}
	r.failPending()
	log.Debug("producer controller stopped", "err", err)
	return err
}

// failPending resolves every pending confirmation with ErrClosed.
func (r *producerRun[T]) failPending() {
	for _, a := range r.p.intake.close(ErrClosed) {
		if a.reply != nil {
			a.reply.fail(ErrClosed)
		}
	}
	r.storeWaits.resolveUpTo(^SeqNr(0), func(c *Confirmation) { c.resolveStored(ErrClosed) })
	r.replies.resolveUpTo(^SeqNr(0), func(c *Confirmation) { c.fail(ErrClosed) })
}

// takeIntake splits a batch of accepted messages into held entries and,
// with a durable queue, into the next store.
func (r *producerRun[T]) takeIntake(batch []accepted) {
	chunk := r.s.ChunkSize
	for _, a := range batch {
		for i := 0; i < a.chunks; i++ {
			var e entry
			if i == 0 {
				e.flags |= flagFirstChunk
			}
			end := min((i+1)*chunk, len(a.payload))
			e.payload = a.payload[i*chunk : end : end]
			if i == a.chunks-1 {
				e.flags |= flagLastChunk
				if a.reply != nil {
					e.flags |= flagAck
				}
			}
			r.held = append(r.held, e)
			r.heldBytes += len(e.payload)
			if r.store != nil {
				r.store.add(StoredMessage{SeqNr: a.first + SeqNr(i), FirstChunk: i == 0, LastChunk: i == a.chunks-1, Payload: e.payload})
			}
		}
		r.accepted = a.first + SeqNr(a.chunks) - 1
		if a.reply != nil {
			r.replies.add(a.reply)
			r.storeWaits.add(a.reply)
		}
	}
	if r.store == nil {
		r.stored = r.accepted
		r.p.stats.stored.Store(uint64(r.stored))
		r.storeWaits.resolveUpTo(r.stored, func(c *Confirmation) { c.resolveStored(nil) })
	}
	r.p.stats.accepted.Store(uint64(r.accepted))
	r.p.stats.heldBytes.Store(int64(r.heldBytes))
	r.batch = batch
}

// sendMore sends what the window allows, keeps the intake's limit in step
// and arms the first-message timer.
func (r *producerRun[T]) sendMore() {
	if r.sent < r.stored && r.sent < r.requested {
		from := r.sent + 1
		// Frames go to the writer between passes of the loop: building a
		// whole window of large messages at once would leave the link idle
		// meanwhile (64 MB for a window of 64 KiB messages). Frames ahead of
		// the writer are bounded; more follow as it takes them.
		for r.sent < r.stored && r.sent < r.requested && r.out.backlog() <= maxBacklog {
			r.sent++
			r.emit(r.sent)
		}
		r.p.stats.messagesSent.Add(uint64(r.sent - from + 1))
	}
	if !r.resendSupported {
		r.dropHeld(r.sent)
	}
	r.p.stats.sent.Store(uint64(r.sent))
	if r.awaitingFirst && r.sent >= r.firstSeqNr && !r.firstArmed {
		r.firstTimer.Reset(r.s.FirstResendInterval)
		r.firstArmed = true
	}
	r.p.stats.requested.Store(uint64(r.requested))
	if limit := min(r.requested, r.confirmed+SeqNr(r.s.MaxUnconfirmed)); limit != r.limit && !r.draining {
		r.limit = limit
		r.p.intake.setLimit(limit)
	}
}

// emit writes the held message seqNr into the outbox.
func (r *producerRun[T]) emit(seqNr SeqNr) {
	e := r.heldAt(seqNr)
	flags := e.flags
	if seqNr == r.firstSeqNr {
		flags |= flagFirst
	}
	h := frameHeader{kind: dataFrame, producerEpoch: r.epoch, consumerEpoch: r.consumerEpoch, producerID: r.s.ProducerID}
	buf := r.out.reserve(h, sequencedSize(seqNr, len(e.payload)))
	*buf = appendSequenced(*buf, flags, seqNr, e.payload)
}

// resend emits the held messages from..to again.
func (r *producerRun[T]) resend(from, to SeqNr) {
	from = max(from, r.heldStart)
	for s := from; s <= to; s++ {
		r.emit(s)
	}
	if to >= from {
		r.p.stats.resent.Add(uint64(to - from + 1))
	}
}

func (r *producerRun[T]) resendFirst() {
	if r.awaitingFirst && r.sent >= r.firstSeqNr && r.firstSeqNr >= r.heldStart {
		r.s.Logger.Debug("resending first message", "seq_nr", r.firstSeqNr)
		r.resend(r.firstSeqNr, r.firstSeqNr)
	}
}

func (r *producerRun[T]) onControlFrame(f inbound) {
	h := f.hdr
	if h.producerID != "" && h.producerID != r.s.ProducerID {
		return // addressed to another producer on the same stream
	}
	msgs := f.messages()
	for {
		m, ok, _ := msgs.next() // the reader checked the frame
		if !ok {
			return
		}
		if m.typ == msgRegister {
			r.onRegister(h.consumerEpoch)
			continue
		}
		if h.producerEpoch != r.epoch || h.producerID != r.s.ProducerID {
			r.p.stats.staleControl.Add(1)
			continue // for another lifetime of ours
		}
		// Another consumer lifetime than the one we know: a new consumer
		// that found our numbering without our seeing its registration (a
		// broker redelivered it our first message), or, late, a replaced
		// one. Either way what it says is true: confirmations are facts, and
		// a stale window overshoots by one window at most. Ignoring a lower
		// epoch instead would stall a consumer whose clock is behind.
		fresh := h.consumerEpoch != r.consumerEpoch
		if fresh {
			r.consumerEpoch = h.consumerEpoch
		}
		r.awaitingFirst = false
		switch m.typ {
		case msgRequest:
			r.onConfirmed(m.seqNr)
			if !m.has(reqSupportResend) && r.resendSupported {
				r.resendSupported = false
				r.dropHeld(r.sent)
			}
			if fresh || m.upTo > r.requested {
				r.requested = max(m.upTo, r.confirmed)
			}
			switch {
			case !m.has(reqViaTimeout):
			case r.resendSupported:
				// The consumer has heard nothing for a while: the last message,
				// or the request that followed it, may be lost.
				r.resend(r.confirmed+1, r.sent)
			case r.sent >= r.requested:
				// Only flow control: what is missing below the window's end
				// was lost and will not be resent, yet it holds the window
				// shut. One message past it shows the consumer the gap, which
				// it skips, and the window opens again. An idle producer stays
				// at most one past.
				r.requested = r.sent + 1
			}
		case msgAck:
			r.onConfirmed(m.seqNr)
		case msgResend:
			if r.resendSupported {
				r.resend(max(m.seqNr, r.confirmed+1), r.sent)
			}
		}
	}
}

// onRegister answers a consumer that has no numbering: everything not
// confirmed goes again, the oldest marked first.
func (r *producerRun[T]) onRegister(consumerEpoch uint64) {
	r.p.stats.registrations.Add(1)
	r.consumerEpoch = consumerEpoch
	r.resendSupported = true
	r.firstSeqNr = max(r.confirmed+1, r.heldStart)
	r.awaitingFirst = true
	// The new consumer has granted nothing: send what was sent, and the
	// first message if none was, then wait for its request.
	r.requested = max(r.sent, r.firstSeqNr)
	r.resend(r.firstSeqNr, r.sent)
}

func (r *producerRun[T]) onConfirmed(seqNr SeqNr) {
	if seqNr <= r.confirmed {
		return
	}
	if seqNr > r.sent {
		r.s.Logger.Warn("consumer confirmed beyond what was sent; ignoring the excess", "confirmed", seqNr, "sent", r.sent)
		seqNr = r.sent
	}
	r.confirmed = seqNr
	r.p.stats.confirmed.Store(uint64(seqNr))
	if r.resendSupported {
		r.dropHeld(seqNr)
	}
	if r.store != nil {
		r.store.confirm(seqNr)
	}
	r.replies.resolveUpTo(seqNr, func(c *Confirmation) { c.resolve(nil) })
	if seqNr >= r.firstSeqNr {
		r.awaitingFirst = false
	}
}

func (r *producerRun[T]) heldAt(seqNr SeqNr) entry {
	return r.held[r.heldHead+int(seqNr-r.heldStart)]
}

// dropHeld forgets the held messages up to seqNr.
func (r *producerRun[T]) dropHeld(seqNr SeqNr) {
	n := len(r.held) - r.heldHead
	drop := min(int(seqNr+1-min(r.heldStart, seqNr+1)), n)
	if drop <= 0 {
		return
	}
	freed := 0
	for _, e := range r.held[r.heldHead : r.heldHead+drop] {
		freed += len(e.payload)
	}
	r.heldBytes -= freed
	r.p.intake.release(freed)
	r.p.stats.heldBytes.Store(int64(r.heldBytes))
	clear(r.held[r.heldHead : r.heldHead+drop])
	r.heldHead += drop
	r.heldStart += SeqNr(drop)
	switch {
	case r.heldHead == len(r.held):
		r.held, r.heldHead = r.held[:0], 0
	case r.heldHead > 1024 && r.heldHead*2 > len(r.held):
		live := copy(r.held, r.held[r.heldHead:])
		clear(r.held[live:])
		r.held, r.heldHead = r.held[:live], 0
	}
}
