package delivery

import (
	"context"
	"time"
)

// consumerRun is the state of one run of a ConsumerController. Only the
// controller goroutine (run) touches it.
type consumerRun[T any] struct {
	c    *ConsumerController[T]
	s    ConsumerSettings
	pump *pump
	out  outbox

	// The numbering followed: one producer lifetime, from its first
	// message on. (Confirmations of deliveries from an abandoned one are
	// ignored: they land in its readyGen.)
	numbered      bool
	producerID    string
	producerEpoch uint64

	received  SeqNr // highest received in order; the next expected is received+1
	delivered SeqNr // highest whole message pushed to the application
	confirmed SeqNr // highest confirmed by the application
	reported  SeqNr // confirmed as last told the producer
	requested SeqNr // highest the producer may send
	resending bool  // a gap was found; dropping until received+1 comes

	base SeqNr // the numbering's start, less one

	partial        []byte   // chunks of a message being reassembled
	partialHeaders []byte   // its headers, encoded (they came on its first chunk)
	headerArena    []Header // where the headers of messages pushed are decoded into
	assembling     bool
	// discarding: the message being received is larger than MaxMessageSize
	// (or a tombstone): its chunks are skipped, and buffered nowhere.
	discarding bool
	// skips are messages skipped (refused), each confirmable once every
	// delivery before it is confirmed.
	skips []skip

	// held is what the consumer holds of the numbering, received in order
	// and not confirmed: each message's (or chunk's) bytes, oldest first.
	held      fifo[sized]
	heldBytes int
	// unreported is the bytes confirmed since the producer was last told:
	// at half the window in bytes it is told, so a window of large messages
	// (full in bytes long before in sequence numbers) keeps moving.
	unreported int

	acks     []SeqNr          // messages flagged ack, not yet confirmed
	releases []pendingRelease // frames to release once confirmed covers them
	pushes   []readyMsg       // messages to push after the current frame
	waiting  int              // messages in the ready queue not yet handed out

	ackTimer      *time.Timer // pending report of confirmations (AckDelay)
	ackArmed      bool
	ackDue        bool // the delayed ack fired
	retry         *time.Timer
	retryArmed    bool
	retryInterval time.Duration
	quietSince    time.Time // last message taken in, or last retry
	lastRegister  time.Time

	stopping     bool
	futureEpochs throttle
}

// maxEpochAhead is how far ahead of the consumer's clock a producer's epoch
// may be (epochs are the producer's wall clock in nanoseconds, or stored
// numbers that grow by one from there): more is refused.
const maxEpochAhead = time.Hour

type pendingRelease struct {
	seqNr   SeqNr
	release func()
}

// sized is a sequence number and its payload's bytes.
type sized struct {
	seqNr SeqNr
	bytes int
}

// skip is a message the application never sees: confirmed as soon as the
// application has confirmed everything delivered before it (after).
type skip struct {
	after, end SeqNr
	ack        bool
}

func newConsumerRun[T any](c *ConsumerController[T]) *consumerRun[T] {
	return &consumerRun[T]{
		c:             c,
		s:             c.settings,
		out:           outbox{max: DefaultMaxFrameSize},
		retryInterval: c.settings.ResendMin,
	}
}

func (r *consumerRun[T]) run(ctx context.Context) (err error) {
	r.pump = newPump(r.c.link, dataFrame, r.s.Logger, &r.c.stats.linkCounters)
	r.out.spare = r.pump.spare
	pumpCtx, cancelPump := context.WithCancel(context.Background())
	r.pump.start(pumpCtx)
	r.retry = time.NewTimer(time.Hour)
	r.retry.Stop()
	defer r.retry.Stop()
	r.ackTimer = time.NewTimer(time.Hour)
	r.ackTimer.Stop()
	defer r.ackTimer.Stop()
	log := r.s.Logger.With("consumer_epoch", r.s.Epoch)
	log.Debug("consumer controller started")

	r.register()
	r.quietSince = time.Now()
	r.armRetry()

	life := &r.c.life
	drain := life.drain
	in := r.pump.in
	graceful := false
loop:
	for {
		var toWriter chan<- []byte
		frame := r.out.next()
		if frame != nil {
			toWriter = r.pump.out
		}
		select {
		case f := <-in:
			r.onDataFrame(f)
		case <-r.c.ready.wake:
		case toWriter <- frame:
			r.out.taken()
		case <-r.retry.C:
			r.retryArmed = false
			r.onRetry()
		case <-r.ackTimer.C:
			r.ackArmed, r.ackDue = false, true // settle reads the latest confirmations, then reports
		case <-drain:
			drain, in = nil, nil // take no more frames
			r.stopping = true
		case err = <-r.pump.fatal:
			log.Error("link failed; consumer controller stops", "err", err)
			break loop
		case <-life.quit:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
		r.settle()
		if r.stopping && r.waiting == 0 && r.confirmed == r.delivered {
			r.reportConfirmed()
			graceful = true
			break loop
		}
	}

	if graceful {
		r.c.ready.close(ErrClosed, false)
		// Tell the producer what was confirmed, but do not wait on a
		// producer that is gone: not once the link says it cannot reach
		// it, and not longer than the longest retry interval.
		flushCtx, cancel := context.WithTimeout(ctx, r.s.ResendMax)
		if !r.pump.flush(flushCtx, &r.out, life.quit) {
			log.Warn("could not tell the producer the last confirmations before stopping; it will resend them to the next consumer", "confirmed", r.confirmed)
		}
		cancel()
	} else {
		r.c.ready.close(ErrClosed, true)
	}
	cancelPump()
	r.pump.wait()
	r.c.link.Close()
	log.Debug("consumer controller stopped", "err", err)
	return err
}

// settle brings the controller up to date with the application after any
// event: confirmations release frames, answer acks and open the window.
func (r *consumerRun[T]) settle() {
	if len(r.pushes) > 0 {
		r.c.stats.delivered.Add(uint64(len(r.pushes)))
		r.pushes = r.c.ready.push(r.pushes)
	}
	st := r.c.ready.progress()
	r.waiting = st.waiting
	ackDue := r.ackDue
	r.ackDue = false
	confirmed := max(st.confirmed, r.confirmed)
	for len(r.skips) > 0 && confirmed >= r.skips[0].after {
		confirmed = max(confirmed, r.skips[0].end)
		ackDue = ackDue || r.skips[0].ack
		r.skips = r.skips[1:]
	}
	if confirmed > r.confirmed {
		r.confirmed = confirmed
		r.c.stats.confirmed.Store(uint64(r.confirmed))
		r.releaseUpTo(r.confirmed)
		n := 0
		for ; n < r.held.len() && r.held.at(n).seqNr <= confirmed; n++ {
			r.heldBytes -= r.held.at(n).bytes
			r.unreported += r.held.at(n).bytes
		}
		r.held.drop(n)
	}
	requested := r.grant()
	ackDue = ackDue || r.unreported >= r.s.WindowBytes/2
	for len(r.acks) > 0 && r.acks[0] <= r.confirmed {
		r.acks = r.acks[1:]
		ackDue = true
	}
	switch {
	case requested:
	case ackDue:
		r.reportConfirmed()
	case r.confirmed > r.reported && !r.ackArmed:
		r.ackTimer.Reset(r.s.AckDelay)
		r.ackArmed = true
	}
	r.c.ready.sync(r.wakeAt())
	r.armRetry()
}

// wakeAt is the next confirmation the controller must act on: the one that
// opens the window, answers an ack, releases a frame, lets chunks or
// skipped numbers count as progress, or starts the delayed ack.
func (r *consumerRun[T]) wakeAt() SeqNr {
	at := SeqNr(0)
	consider := func(s SeqNr) {
		if s > r.confirmed && (at == 0 || s < at) {
			at = s
		}
	}
	if half := SeqNr(r.s.Window / 2); r.numbered && r.requested > half {
		consider(r.requested - half)
	}
	if len(r.acks) > 0 {
		consider(r.acks[0])
	}
	if len(r.releases) > 0 {
		consider(r.releases[0].seqNr)
	}
	if len(r.skips) > 0 {
		consider(r.skips[0].after)
	}
	if r.received > r.delivered || r.stopping {
		consider(r.delivered) // then progress is measured by what was received
	}
	if !r.ackArmed {
		consider(r.reported + 1) // to start the delayed ack
	}
	if half := r.s.WindowBytes / 2; r.unreported+r.heldBytes >= half {
		// The confirmation that brings half the window in bytes.
		n := r.unreported
		for _, h := range r.held.live() {
			if n += h.bytes; n >= half {
				consider(h.seqNr)
				break
			}
		}
	}
	return at
}

// grant asks for the next half window once half of the current one is used
// up, and reports whether it sent a request.
func (r *consumerRun[T]) grant() bool {
	if !r.numbered || r.stopping {
		return false
	}
	progress := r.confirmed
	if r.waiting == 0 && r.confirmed == r.delivered {
		// The application is idle: whatever was received beyond its
		// confirmations is chunks being reassembled or messages skipped, and
		// must not hold the window shut.
		progress = r.received
	}
	if progress+SeqNr(r.s.Window/2) < r.requested {
		return false
	}
	r.requested = progress + SeqNr(r.s.Window)
	r.c.stats.requested.Store(uint64(r.requested))
	r.sendRequest(false)
	return true
}

func (r *consumerRun[T]) sendRequest(viaTimeout bool) {
	var flags byte
	if !r.s.OnlyFlowControl {
		flags |= reqSupportResend
	}
	if viaTimeout {
		flags |= reqViaTimeout
	}
	buf := r.out.reserve(r.controlHeader(), controlMessageMax)
	*buf = appendRequest(*buf, r.confirmed, r.requested, flags, r.s.MaxMessageSize, r.s.WindowBytes)
	r.reported, r.unreported = r.confirmed, 0
}

// reportConfirmed tells the producer how far the application confirmed,
// without granting more.
func (r *consumerRun[T]) reportConfirmed() {
	if !r.numbered || r.confirmed <= r.reported {
		return
	}
	buf := r.out.reserve(r.controlHeader(), controlMessageMax)
	*buf = appendAck(*buf, r.confirmed, r.s.MaxMessageSize)
	r.reported, r.unreported = r.confirmed, 0
}

func (r *consumerRun[T]) register() {
	h := frameHeader{kind: controlFrame, consumerEpoch: r.s.Epoch, producerID: r.s.ProducerID}
	buf := r.out.reserve(h, controlMessageMax)
	*buf = appendRegister(*buf, r.s.MaxMessageSize, r.s.Window, r.s.WindowBytes)
	r.lastRegister = time.Now()
	r.c.stats.registers.Add(1)
}

func (r *consumerRun[T]) controlHeader() frameHeader {
	return frameHeader{kind: controlFrame, producerEpoch: r.producerEpoch, consumerEpoch: r.s.Epoch, producerID: r.producerID}
}

// onDataFrame takes a frame's messages in. Nothing in a frame stops the
// consumer: what it cannot take it drops, and counts.
func (r *consumerRun[T]) onDataFrame(f inbound) {
	h := f.hdr
	kept := SeqNr(0) // highest number from this frame that the application will confirm
	progress := false
	msgs := f.messages()
	for {
		m, ok, _ := msgs.next() // the reader checked the frame
		if !ok {
			break
		}
		if !r.follows(h) {
			if !m.has(flagFirst) || !r.mayStart(h) {
				r.dropForeign(h)
				continue
			}
			r.start(h, m.seqNr)
			kept = 0 // anything kept earlier in this frame belonged to the old numbering
		}
		switch expected := r.received + 1; {
		case m.seqNr > r.windowEnd() || m.seqNr == r.received+1 && m.has(flagFirstChunk) && r.heldBytes > 0 && r.heldBytes+len(m.payload) > r.s.WindowBytes:
			// Never granted, in sequence numbers or in bytes: a producer
			// that sends past the window would fill the consumer's memory.
			// It sends again once granted. The bytes are checked where a
			// message starts: its further chunks follow (the message is
			// confirmed only once whole, so holding them back would hold the
			// window shut for good), bounded by MaxMessageSize.
			r.c.stats.beyondWindow.Add(1)
			continue
		case m.seqNr == expected:
			r.resending = false
		case m.seqNr < expected:
			r.c.stats.duplicates.Add(1)
			continue
		case r.s.OnlyFlowControl:
			// At most once: what was lost stays lost.
			r.c.stats.lost.Add(uint64(m.seqNr - expected))
			r.assembling, r.discarding, r.partial = false, false, nil
		default:
			r.c.stats.gapDrops.Add(1)
			if !r.resending {
				r.resending = true
				r.sendResend()
			}
			continue
		}
		progress = true
		r.received = m.seqNr
		if r.take(m) {
			kept = m.seqNr
			r.held.push(sized{seqNr: m.seqNr, bytes: len(m.payload)})
			r.heldBytes += len(m.payload)
		}
	}
	if progress {
		r.c.stats.received.Store(uint64(r.received))
		r.quietSince = time.Now()
		r.retryInterval = r.s.ResendMin
	}
	if f.release != nil {
		if kept == 0 || kept <= r.confirmed {
			f.release()
		} else {
			r.releases = append(r.releases, pendingRelease{seqNr: kept, release: f.release})
		}
	}
}

// windowEnd is the highest sequence number the consumer takes: what it
// granted, and at the start of a numbering, before its first grant reached
// the producer, a window from there (a producer answering a registration
// resends what it had sent, unasked). In only-flow-control mode a window
// more: a producer that has sent the whole window goes one past it on each
// of the consumer's retries, to show the consumer a gap that would hold the
// window shut, and the first of those to arrive opens it again.
func (r *consumerRun[T]) windowEnd() SeqNr {
	end := max(r.requested, r.base+SeqNr(r.s.Window))
	if r.s.OnlyFlowControl {
		end += SeqNr(r.s.Window)
	}
	return end
}

// take reassembles and queues a message received in order. It reports
// whether the application will see (and confirm) it.
func (r *consumerRun[T]) take(m wireMsg) bool {
	first, last := m.has(flagFirstChunk), m.has(flagLastChunk)
	if first && (r.assembling || r.discarding) {
		r.s.Logger.Warn("message started inside a chunked one; dropping the partial message", "seq_nr", m.seqNr)
		r.assembling, r.discarding, r.partial = false, false, nil
	}
	switch {
	case first && (m.has(flagRefused) || int64(m.total) > int64(r.s.MaxMessageSize) || len(m.payload) > r.s.MaxMessageSize):
		r.discarding = true
	case first && last:
		r.push(m.seqNr, m.payload, m.headers, m.has(flagAck))
		return true
	case first:
		r.partial = append(make([]byte, 0, min(max(int(m.total), 2*len(m.payload)), r.s.MaxMessageSize)), m.payload...)
		r.partialHeaders = m.headers
		r.assembling = true
		return true
	case r.discarding:
	case !r.assembling:
		// A continuation of a message whose start was lost (or that began
		// before this numbering did): it cannot be completed.
		r.c.stats.lost.Add(1)
		return false
	case m.has(flagRefused) || len(r.partial)+len(m.payload) > r.s.MaxMessageSize:
		// The producer refused it after all, or it grows past what it said.
		r.assembling, r.discarding, r.partial = false, true, nil
	default:
		r.partial = append(r.partial, m.payload...)
		if last {
			r.push(m.seqNr, r.partial, r.partialHeaders, m.has(flagAck))
			r.assembling, r.partial, r.partialHeaders = false, nil, nil
		}
		return true
	}
	// Discarding: the message is skipped once its last chunk is in.
	if last {
		r.discarding = false
		r.c.stats.refused.Add(1)
		r.skips = append(r.skips, skip{after: r.delivered, end: m.seqNr, ack: m.has(flagAck)})
		r.delivered = m.seqNr
	}
	return false
}

func (r *consumerRun[T]) push(seqNr SeqNr, payload, headers []byte, ack bool) {
	m := readyMsg{seqNr: seqNr, payload: payload}
	if headers != nil {
		m.headers = decodeHeaders(headers, &r.headerArena) // the reader checked them
	}
	r.pushes = append(r.pushes, m)
	r.delivered = seqNr
	r.waiting++
	if ack {
		r.acks = append(r.acks, seqNr)
	}
}

// follows reports whether a frame belongs to the numbering followed.
func (r *consumerRun[T]) follows(h frameHeader) bool {
	return r.numbered && h.producerEpoch == r.producerEpoch && h.producerID == r.producerID
}

// mayStart reports whether a first message with header h may start a new
// numbering: the consumer has none, or it comes from a later lifetime of the
// same producer, or from another producer taking the stream over.
func (r *consumerRun[T]) mayStart(h frameHeader) bool {
	switch {
	case r.s.ProducerID != "" && h.producerID != r.s.ProducerID:
		return false
	case h.producerEpoch > uint64(time.Now().Add(maxEpochAhead).UnixNano()):
		// An epoch far in the future would hold the stream for ever: every
		// later lifetime of the real producer would look older. Epochs come
		// from a clock; one this far ahead is forged or broken.
		if ok, since := r.futureEpochs.allow(time.Now()); ok {
			r.s.Logger.Warn("refused a producer epoch more than an hour ahead of this clock",
				"producer_id", h.producerID, "epoch", h.producerEpoch, "refused_since_last_log", since)
		}
		return false
	case !r.numbered:
		return true
	case h.producerID == r.producerID:
		return h.producerEpoch > r.producerEpoch
	default:
		r.s.Logger.Warn("another producer takes the stream over", "from", r.producerID, "to", h.producerID)
		return true
	}
}

// dropForeign drops a message of another numbering. A late one of an earlier
// lifetime is ignored; one of a numbering this consumer could follow but
// missed the start of makes it register, so the producer sends again from a
// first message.
func (r *consumerRun[T]) dropForeign(h frameHeader) {
	switch {
	case r.s.ProducerID != "" && h.producerID != r.s.ProducerID:
		r.c.stats.foreign.Add(1)
	case r.numbered && h.producerID == r.producerID && h.producerEpoch < r.producerEpoch:
		r.c.stats.late.Add(1)
	default:
		r.c.stats.foreign.Add(1)
		if time.Since(r.lastRegister) >= r.s.ResendMin {
			r.register()
		}
	}
}

// start begins following the numbering of header h from seqNr.
func (r *consumerRun[T]) start(h frameHeader, seqNr SeqNr) {
	if r.numbered {
		r.s.Logger.Info("following a new producer numbering",
			"producer_id", h.producerID, "epoch", h.producerEpoch, "seq_nr", seqNr,
			"previous_id", r.producerID, "previous_epoch", r.producerEpoch)
	}
	for _, p := range r.releases {
		p.release() // abandoned with the old numbering
	}
	clear(r.releases)
	r.releases = r.releases[:0]
	r.numbered, r.producerID, r.producerEpoch = true, h.producerID, h.producerEpoch
	base := seqNr - 1
	r.base = base
	r.received, r.delivered, r.confirmed, r.reported, r.requested = base, base, base, base, base
	r.resending, r.assembling, r.discarding, r.partial = false, false, false, nil
	r.skips = r.skips[:0]
	r.held.reset()
	r.heldBytes, r.unreported = 0, 0
	r.acks, r.waiting = r.acks[:0], 0
	clear(r.pushes)
	r.pushes = r.pushes[:0]
	r.c.ready.reset(producerIdentity{id: h.producerID, epoch: h.producerEpoch}, base)
	r.c.stats.numberings.Add(1)
	r.c.stats.setProducer(h.producerID, h.producerEpoch)
	r.c.stats.received.Store(uint64(base))
	r.c.stats.confirmed.Store(uint64(base))
	r.c.stats.requested.Store(uint64(base))
}

func (r *consumerRun[T]) releaseUpTo(seqNr SeqNr) {
	n := 0
	for n < len(r.releases) && r.releases[n].seqNr <= seqNr {
		r.releases[n].release()
		n++
	}
	if n > 0 {
		rest := copy(r.releases, r.releases[n:])
		clear(r.releases[rest:])
		r.releases = r.releases[:rest]
	}
}

func (r *consumerRun[T]) sendResend() {
	buf := r.out.reserve(r.controlHeader(), controlMessageMax)
	*buf = appendResend(*buf, r.received+1)
	r.c.stats.resendRequests.Add(1)
}

// armRetry keeps the retry timer running while the consumer waits for
// something from the producer.
func (r *consumerRun[T]) armRetry() {
	if !r.retryArmed && r.awaitingProducer() {
		r.retry.Reset(r.retryInterval)
		r.retryArmed = true
	}
}

// awaitingProducer reports whether the consumer expects something from the
// producer: a first message, a resend, or messages within the window.
func (r *consumerRun[T]) awaitingProducer() bool {
	if r.stopping {
		return false
	}
	return !r.numbered || r.resending || r.received < r.requested
}

// onRetry repeats the last request when nothing came for a retry interval:
// the registration, the resend, or the window request (marked as sent by
// the timer, so the producer resends everything unconfirmed: the last
// message, or the request that followed it, may be lost).
func (r *consumerRun[T]) onRetry() {
	if !r.awaitingProducer() {
		return
	}
	if idle := time.Since(r.quietSince); idle < r.retryInterval {
		r.retry.Reset(r.retryInterval - idle)
		r.retryArmed = true
		return
	}
	r.c.stats.retries.Add(1)
	switch {
	case !r.numbered:
		r.register()
	case r.resending:
		r.sendResend()
	default:
		r.sendRequest(true)
	}
	r.retryInterval = min(time.Duration(float64(r.retryInterval)*retryBackoff), r.s.ResendMax)
	r.quietSince = time.Now()
}
