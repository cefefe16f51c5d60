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

	// resendFrom..resendTo is what is to go again, merged from every ask,
	// and emitted as the writer takes frames: however often it is asked,
	// what the outbox holds stays bounded. resendFrom 0: nothing.
	resendFrom, resendTo SeqNr

	// What the consumer told us: heard, once a request or ack of
	// consumerEpoch arrived (a register of that epoch is then stale); its
	// largest message (0 until known), and when a register was last acted
	// on.
	heard          bool
	consumerMax    int
	windowBytes    int         // the consumer's window in bytes (0 until it says)
	flight         fifo[sized] // sent and not confirmed: each message's bytes, oldest first
	flightBytes    int
	lastRegister   time.Time
	refused        map[SeqNr]*MessageTooLargeError // tombstones whose Confirmation fails, by last chunk
	refusedWarning throttle

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
	flags   byte    // flagFirstChunk, flagLastChunk, flagAck, flagRefused
	size    int     // on a first chunk: the whole message's size
	headers Headers // on a first chunk: the message's headers
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
	r.out.spare = r.pump.spare
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
	oversized := false
	for _, a := range batch {
		// Taken by Send before the consumer's limit reached the intake:
		// the consumer would drop it, and its confirmation of the skipped
		// numbers would tell the sender it was delivered.
		oversized = oversized || r.consumerMax > 0 && len(a.payload) > r.consumerMax
		for i := 0; i < a.chunks; i++ {
			var e entry
			if i == 0 {
				e.flags |= flagFirstChunk
			}
			start := 0
			if i == 0 {
				e.size, e.headers = len(a.payload), a.headers
			} else {
				start = a.firstLen + (i-1)*chunk
			}
			end := min(a.firstLen+i*chunk, len(a.payload))
			e.payload = a.payload[start:end:end]
			if i == a.chunks-1 {
				e.flags |= flagLastChunk
				if a.reply != nil {
					e.flags |= flagAck
				}
			}
			r.held = append(r.held, e)
			r.heldBytes += len(e.payload)
			if r.store != nil {
				r.store.add(StoredMessage{SeqNr: a.first + SeqNr(i), FirstChunk: i == 0, LastChunk: i == a.chunks-1, Headers: storeHeaders(e.headers), Payload: e.payload})
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
	if oversized {
		r.refuseOversized(r.consumerMax)
	}
	r.p.stats.accepted.Store(uint64(r.accepted))
	r.p.stats.heldBytes.Store(int64(r.heldBytes))
	r.batch = batch
}

// sendMore sends what is to go again, then what the window allows, keeps
// the intake's limit in step and arms the first-message timer. Frames go to
// the writer between passes of the loop: building a whole window of large
// messages at once would leave the link idle meanwhile (64 MB for a window
// of 64 KiB messages), and a flood of asks for resends would build without
// bound. Frames ahead of the writer are bounded; more follow as it takes
// them.
func (r *producerRun[T]) sendMore() {
	r.resendMore()
	if r.sent < r.stored && r.sent < r.requested {
		from := r.sent + 1
		for r.sent < r.stored && r.sent < r.requested && r.out.backlog() <= maxBacklog && r.fits(r.sent+1) {
			r.sent++
			r.emit(r.sent)
			if n := len(r.heldAt(r.sent).payload); n > 0 {
				r.flight.push(sized{seqNr: r.sent, bytes: n})
				r.flightBytes += n
			}
		}
		r.p.stats.messagesSent.Add(uint64(r.sent - from + 1))
	}
	if !r.resendSupported {
		r.dropHeld(r.sent)
	}
	r.p.stats.sent.Store(uint64(r.sent))
	r.p.stats.flightBytes.Store(int64(r.flightBytes))
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

// fits reports whether message seqNr, not yet sent, fits the consumer's
// window in bytes: a message larger than the window goes alone. Only a
// message's first chunk waits for room: the consumer confirms a message
// once it has all of it, so its other chunks follow whatever the window.
func (r *producerRun[T]) fits(seqNr SeqNr) bool {
	if r.windowBytes == 0 || r.flightBytes == 0 {
		return true
	}
	e := r.heldAt(seqNr)
	return e.flags&flagFirstChunk == 0 || r.flightBytes+len(e.payload) <= r.windowBytes
}

// resendMore emits what is to go again, as far as the backlog allows.
func (r *producerRun[T]) resendMore() {
	if r.resendFrom == 0 {
		return
	}
	from := max(r.resendFrom, r.heldStart, r.confirmed+1)
	to := min(r.resendTo, r.sent)
	n := 0
	for ; from <= to && r.out.backlog() <= maxBacklog; from++ {
		r.emit(from)
		n++
	}
	r.p.stats.resent.Add(uint64(n))
	if from > to {
		r.resendFrom, r.resendTo = 0, 0
	} else {
		r.resendFrom = from
	}
}

// emit writes the held message seqNr into the outbox.
func (r *producerRun[T]) emit(seqNr SeqNr) {
	e := r.heldAt(seqNr)
	flags := e.flags
	if seqNr == r.firstSeqNr {
		flags |= flagFirst
	}
	total := 0
	if e.flags&(flagFirstChunk|flagLastChunk) == flagFirstChunk {
		total = e.size // the first chunk of a chunked message says how large it is
	}
	h := frameHeader{kind: dataFrame, producerEpoch: r.epoch, consumerEpoch: r.consumerEpoch, producerID: r.s.ProducerID}
	hb := blockOf(e.headers)
	buf := r.out.reserve(h, sequencedSize(seqNr, total, hb, len(e.payload)))
	*buf = appendSequenced(*buf, flags, seqNr, total, hb, e.payload)
}

// resend asks for the held messages from..to to go again; asks merge.
func (r *producerRun[T]) resend(from, to SeqNr) {
	from = max(from, r.heldStart, r.confirmed+1)
	to = min(to, r.sent)
	if from > to {
		return
	}
	if r.resendFrom == 0 {
		r.resendFrom, r.resendTo = from, to
		return
	}
	r.resendFrom, r.resendTo = min(r.resendFrom, from), max(r.resendTo, to)
}

func (r *producerRun[T]) resendFirst() {
	if r.awaitingFirst && r.sent >= r.firstSeqNr && r.firstSeqNr >= r.heldStart {
		r.s.Logger.Debug("resending first message", "seq_nr", r.firstSeqNr)
		r.resend(r.firstSeqNr, r.firstSeqNr)
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
