package delivery

import "time"

// registerEvery is how often, at most, a producer answers a registration:
// each answer resends what is unconfirmed, so a flood of them (a peer that
// repeats them, a broker that redelivers) must not make it resend more
// often. A consumer repeats its registration every ResendMin until it is
// answered.
const registerEvery = 100 * time.Millisecond

// onControlFrame acts on what the consumer says.
func (r *producerRun[T]) onControlFrame(f inbound) {
	h := f.hdr
	if h.producerID != "" && h.producerID != r.s.ProducerID {
		return // addressed to another producer on the same stream
	}
	registered := false // at most one registration a frame is acted on
	msgs := f.messages()
	for {
		m, ok, _ := msgs.next() // the reader checked the frame
		if !ok {
			return
		}
		if m.typ == msgRegister {
			if !registered {
				registered = r.onRegister(h.consumerEpoch, m)
			}
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
		r.heard = true
		r.awaitingFirst = false
		if m.typ == msgRequest || m.typ == msgAck {
			// Before the confirmation it carries: a message the consumer
			// cannot take is refused before anything confirms it.
			r.learnLimit(m.maxMsg)
		}
		switch m.typ {
		case msgRequest:
			r.learnWindowBytes(m.winB)
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
// confirmed goes again, the oldest marked first. It reports whether it
// acted: a registration of the consumer already followed is stale (a late
// repeat: acting on it would take the consumer's window away), and one
// within registerEvery of the last is dropped. The window a registration
// grants counts from the first message sent in answer, as the consumer
// takes it (consumerRun.windowEnd).
func (r *producerRun[T]) onRegister(consumerEpoch uint64, m wireMsg) bool {
	now := time.Now()
	if (r.heard && consumerEpoch == r.consumerEpoch) || now.Sub(r.lastRegister) < registerEvery {
		r.p.stats.registersIgnored.Add(1)
		return false
	}
	r.lastRegister = now
	r.p.stats.registrations.Add(1)
	r.consumerEpoch, r.heard = consumerEpoch, false
	r.consumerMax, r.windowBytes = 0, 0 // a new consumer: its own limits
	r.learnLimit(m.maxMsg)
	r.learnWindowBytes(m.winB)
	r.resendSupported = true
	r.firstSeqNr = max(r.confirmed+1, r.heldStart)
	r.awaitingFirst = true
	// Send what was sent, and as much more as the consumer granted (the
	// first message if it granted nothing), then wait for its request.
	// MaxUnconfirmed bounds the intake whatever the grant.
	granted := SeqNr(min(max(m.window, 1), uint64(r.s.MaxUnconfirmed)))
	r.requested = max(r.sent, r.firstSeqNr+granted-1)
	r.resend(r.firstSeqNr, r.sent)
	return true
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
	n := 0
	for ; n < r.flight.len() && r.flight.at(n).seqNr <= seqNr; n++ {
		r.flightBytes -= r.flight.at(n).bytes
	}
	r.flight.drop(n)
	if r.resendSupported {
		r.dropHeld(seqNr)
	}
	if r.store != nil {
		r.store.confirm(seqNr)
	}
	r.replies.resolveUpTo(seqNr, func(c *Confirmation) {
		if err, ok := r.refused[c.seqNr]; ok {
			delete(r.refused, c.seqNr)
			c.resolve(err)
			return
		}
		c.resolve(nil)
	})
	if seqNr >= r.firstSeqNr {
		r.awaitingFirst = false
	}
}

// learnWindowBytes takes the consumer's window in bytes. The producer then
// takes from the application no more than a quarter more than the window
// ahead of it: beyond, what it took would only wait, and its latency grow.
func (r *producerRun[T]) learnWindowBytes(n uint64) {
	if n == 0 || int(min(n, MaxWindowBytes)) == r.windowBytes {
		return
	}
	r.windowBytes = int(min(n, MaxWindowBytes))
	r.p.intake.setMaxBytes(min(r.s.MaxUnconfirmedBytes, r.windowBytes+r.windowBytes/4))
}

// learnLimit takes the consumer's largest message. From then on Send
// refuses larger ones; a larger one taken before, and not yet confirmed,
// becomes a tombstone (see refuseOversized).
func (r *producerRun[T]) learnLimit(maxMsg uint64) {
	limit := int(min(maxMsg, uint64(r.s.MaxMessageSize)))
	if maxMsg == 0 || limit == r.consumerMax {
		return
	}
	lower := r.consumerMax == 0 || limit < r.consumerMax
	r.consumerMax = limit
	r.p.intake.setMaxMessage(limit)
	if lower {
		r.refuseOversized(limit)
	}
}

// refuseOversized replaces every held message larger than limit, not yet
// confirmed, with a tombstone: its chunks keep their sequence numbers and
// go without their payload, marked refused, so the consumer skips them;
// the message's Confirmation fails with a *MessageTooLargeError, and the
// producer logs it. Such a message was taken before the consumer said what
// it takes; it is not lost silently.
func (r *producerRun[T]) refuseOversized(limit int) {
	start := max(r.heldStart, r.confirmed+1)
	end := r.heldStart + SeqNr(len(r.held)-r.heldHead) - 1
	for s := start; s <= end; s++ {
		e := r.heldAt(s)
		if e.flags&flagFirstChunk == 0 || e.size <= limit || e.flags&flagRefused != 0 {
			continue
		}
		size, first := e.size, s
		for ; s <= end; s++ {
			c := &r.held[r.heldHead+int(s-r.heldStart)]
			r.heldBytes -= len(c.payload)
			r.p.intake.release(len(c.payload))
			c.payload = nil
			c.flags |= flagRefused
			if c.flags&flagLastChunk != 0 {
				break
			}
		}
		if r.refused == nil {
			r.refused = map[SeqNr]*MessageTooLargeError{}
		}
		r.refused[s] = &MessageTooLargeError{Size: size, Limit: limit}
		r.p.stats.refused.Add(1)
		if ok, since := r.refusedWarning.allow(time.Now()); ok {
			r.s.Logger.Error("the consumer takes no message this large: refused it; its sender is told",
				"seq_nr", first, "size", size, "consumer_max_message_size", limit, "refused_since_last_log", since)
		}
		if s <= r.sent {
			r.resend(first, s) // the tombstone replaces what was sent
		}
	}
	r.p.stats.heldBytes.Store(int64(r.heldBytes))
}
