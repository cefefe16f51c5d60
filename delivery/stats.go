package delivery

import "sync/atomic"

// ProducerStats is a snapshot of a producer controller's counters. Sequence
// numbers are the latest the controller has reached; counts are totals over
// its lifetime.
type ProducerStats struct {
	Epoch            uint64
	AcceptedSeqNr    SeqNr  // highest sequence number taken from the application
	StoredSeqNr      SeqNr  // highest durably stored (with a durable queue)
	HeldBytes        int64  // payload bytes held: unconfirmed (with a durable queue, its depth in bytes)
	InFlightBytes    int64  // payload bytes sent and not confirmed: within the consumer's window in bytes
	SentSeqNr        SeqNr  // highest sent
	ConfirmedSeqNr   SeqNr  // highest confirmed by the consumer
	RequestedSeqNr   SeqNr  // highest the producer may take (the window's end)
	MessagesSent     uint64 // sequenced messages sent for the first time
	Resent           uint64 // sequenced messages sent again
	Registrations    uint64 // consumers that registered and were answered (each answer is a resend)
	RegistersIgnored uint64 // registrations not acted on: stale repeats of the consumer followed, or within 100 ms of the last
	Refused          uint64 // messages refused as larger than the consumer takes, after they were taken (their Confirmations fail)
	StaleControl     uint64 // control messages ignored: addressed to another lifetime of this producer
	FramesSent       uint64
	FramesReceived   uint64
	SendErrors       uint64 // frames the link failed to send (their messages are resent)
	BadFrames        uint64 // received frames dropped as malformed
}

// Unconfirmed is the number of sequence numbers taken and not yet
// confirmed: with a durable queue, its depth.
func (s ProducerStats) Unconfirmed() uint64 { return uint64(s.AcceptedSeqNr - s.ConfirmedSeqNr) }

type producerCounters struct {
	linkCounters
	accepted, stored, sent, confirmed, requested atomic.Uint64
	heldBytes, flightBytes                       atomic.Int64
	messagesSent, resent                         atomic.Uint64
	registrations, staleControl                  atomic.Uint64
	registersIgnored, refused                    atomic.Uint64
}

func (c *producerCounters) unconfirmedNow() uint64 {
	return c.accepted.Load() - c.confirmed.Load()
}

// Stats returns the controller's counters. It is safe to call at any time
// from any goroutine.
func (p *ProducerController[T]) Stats() ProducerStats {
	c := &p.stats
	return ProducerStats{
		Epoch:            p.epoch.Load(),
		AcceptedSeqNr:    SeqNr(c.accepted.Load()),
		StoredSeqNr:      SeqNr(c.stored.Load()),
		HeldBytes:        c.heldBytes.Load(),
		InFlightBytes:    c.flightBytes.Load(),
		SentSeqNr:        SeqNr(c.sent.Load()),
		ConfirmedSeqNr:   SeqNr(c.confirmed.Load()),
		RequestedSeqNr:   SeqNr(c.requested.Load()),
		MessagesSent:     c.messagesSent.Load(),
		Resent:           c.resent.Load(),
		Registrations:    c.registrations.Load(),
		RegistersIgnored: c.registersIgnored.Load(),
		Refused:          c.refused.Load(),
		StaleControl:     c.staleControl.Load(),
		FramesSent:       c.framesSent.Load(),
		FramesReceived:   c.framesReceived.Load(),
		SendErrors:       c.sendErrors.Load(),
		BadFrames:        c.badFrames.Load(),
	}
}

// ConsumerStats is a snapshot of a consumer controller's counters. Sequence
// numbers belong to the numbering followed now; counts are totals over the
// controller's lifetime.
type ConsumerStats struct {
	Epoch          uint64
	ProducerID     string // the producer followed now ("" before the first message)
	ProducerEpoch  uint64
	Numberings     uint64 // producer numberings followed (a producer restart adds one)
	ReceivedSeqNr  SeqNr  // highest received in order
	ConfirmedSeqNr SeqNr  // highest confirmed by the application
	RequestedSeqNr SeqNr  // highest the producer may send (the window's end)
	Delivered      uint64 // messages handed to the application
	Duplicates     uint64 // messages dropped as already received
	GapDrops       uint64 // messages dropped while waiting for a resend
	Lost           uint64 // sequence numbers skipped (only-flow-control mode) or chunks that could not be reassembled
	Refused        uint64 // messages skipped as larger than MaxMessageSize (the producer's Confirmation of each fails)
	BeyondWindow   uint64 // messages dropped as beyond the window granted
	Late           uint64 // messages of an earlier producer lifetime dropped
	Foreign        uint64 // messages dropped for want of a first message of their numbering
	Registers      uint64 // registrations sent
	ResendRequests uint64 // resends asked for
	Retries        uint64 // requests repeated by the retry timer
	FramesSent     uint64
	FramesReceived uint64
	SendErrors     uint64
	BadFrames      uint64
}

type consumerCounters struct {
	linkCounters
	received, confirmed, requested              atomic.Uint64
	delivered, duplicates, gapDrops, lost, late atomic.Uint64
	foreign, registers, resendRequests, retries atomic.Uint64
	numberings, refused, beyondWindow           atomic.Uint64
	producer                                    atomic.Pointer[producerIdentity]
}

type producerIdentity struct {
	id    string
	epoch uint64
}

func (c *consumerCounters) setProducer(id string, epoch uint64) {
	c.producer.Store(&producerIdentity{id: id, epoch: epoch})
}

func (c *consumerCounters) undeliveredNow() uint64 {
	return c.received.Load() - c.confirmed.Load()
}

// Stats returns the controller's counters. It is safe to call at any time
// from any goroutine.
func (c *ConsumerController[T]) Stats() ConsumerStats {
	k := &c.stats
	st := ConsumerStats{
		Epoch:          c.settings.Epoch,
		Numberings:     k.numberings.Load(),
		ReceivedSeqNr:  SeqNr(k.received.Load()),
		ConfirmedSeqNr: SeqNr(k.confirmed.Load()),
		RequestedSeqNr: SeqNr(k.requested.Load()),
		Delivered:      k.delivered.Load(),
		Duplicates:     k.duplicates.Load(),
		GapDrops:       k.gapDrops.Load(),
		Lost:           k.lost.Load(),
		Refused:        k.refused.Load(),
		BeyondWindow:   k.beyondWindow.Load(),
		Late:           k.late.Load(),
		Foreign:        k.foreign.Load(),
		Registers:      k.registers.Load(),
		ResendRequests: k.resendRequests.Load(),
		Retries:        k.retries.Load(),
		FramesSent:     k.framesSent.Load(),
		FramesReceived: k.framesReceived.Load(),
		SendErrors:     k.sendErrors.Load(),
		BadFrames:      k.badFrames.Load(),
	}
	if p := k.producer.Load(); p != nil {
		st.ProducerID, st.ProducerEpoch = p.id, p.epoch
	}
	return st
}
