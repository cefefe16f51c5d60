package delivery

import (
	"context"
	"fmt"
	"sync/atomic"
)

// ProducerController numbers the application's messages, sends them over a
// Link within the window its consumer grants, keeps them until they are
// confirmed, resends what was lost, and asks the application for more.
//
// The application sends with Send (which waits until the controller asks for
// the next message: Akka's RequestNext), TrySend (which does not wait) or
// SendWithConfirmation (which also returns a reply for when the consumer
// confirms the message). These may be called from any goroutine, before Run
// too: the first message is accepted at once, later ones once a consumer
// grants room.
//
// Run starts three goroutines: the controller, which owns all protocol
// state; a reader, which receives and checks frames; a writer, which sends
// them; and with a durable queue a fourth, the storer, which writes and
// syncs it so that the controller never waits on a disk. Run blocks until
// the controller stops, waits for them, and closes the link and the durable
// queue (see NewProducerController).
type ProducerController[T any] struct {
	settings ProducerSettings
	ser      Serializer[T]
	link     Link
	intake   *intake
	stats    producerCounters
	life     lifecycle
	epoch    atomic.Uint64 // the settings' until Run settles it
}

// NewProducerController returns a controller that sends T over link.
// serializer may be nil when T is []byte or string. The settings are
// checked here; an invalid one gives a *SettingError.
//
// The controller owns link and settings.DurableQueue from this call on,
// whether it succeeds or not: a failed construction closes them, a
// controller closes them when it stops.
func NewProducerController[T any](link Link, serializer Serializer[T], settings ProducerSettings) (*ProducerController[T], error) {
	p, err := newProducerController(link, serializer, settings)
	if err != nil {
		if link != nil {
			link.Close()
		}
		if settings.DurableQueue != nil {
			settings.DurableQueue.Close()
		}
		return nil, err
	}
	return p, nil
}

func newProducerController[T any](link Link, serializer Serializer[T], settings ProducerSettings) (*ProducerController[T], error) {
	s, err := settings.withDefaults()
	if err != nil {
		return nil, err
	}
	ser, err := serializerFor(serializer)
	if err != nil {
		return nil, err
	}
	if link == nil {
		return nil, &SettingError{Setting: "link", Value: nil, Reason: "required"}
	}
	if l, ok := link.(FrameSizeLimiter); ok {
		if max := l.MaxFrameSize(); max > 0 && max < s.MaxFrameSize {
			if max < minFrameSize {
				return nil, &SettingError{Setting: "MaxFrameSize", Value: max, Reason: "the link's frame limit is below 1 KiB"}
			}
			s.MaxFrameSize = max
		}
	}
	if fit := fitChunk(s.ChunkSize, s.MaxFrameSize); fit < s.ChunkSize {
		s.Logger.Info("chunk size lowered to fit the frame limit", "chunk_size", fit, "max_frame_size", s.MaxFrameSize)
		s.ChunkSize = fit
	}
	// Numbering starts at 1, and the first message may go before the
	// consumer asks for it. With a durable queue the numbering is known only
	// once Run has loaded it: until then nothing is taken.
	limit := SeqNr(1)
	if s.DurableQueue != nil {
		limit = 0
	}
	p := &ProducerController[T]{
		settings: s,
		ser:      ser,
		link:     link,
		intake:   newIntake(1, limit, s.MaxUnconfirmedBytes, s.MaxMessageSize),
		life:     newLifecycle(),
	}
	p.epoch.Store(s.Epoch)
	return p, nil
}

// ID returns the producer ID.
func (p *ProducerController[T]) ID() string { return p.settings.ProducerID }

// Epoch returns this lifetime's epoch. With a durable queue it is settled
// when Run loads the queue (above any epoch stored there).
func (p *ProducerController[T]) Epoch() uint64 { return p.epoch.Load() }

// Send waits until the controller asks for the next message, then hands it
// msg and returns its sequence number (for a message sent in chunks, that of
// its last chunk). Returning means the controller took the message, not
// that it was delivered. It returns ctx's error if ctx ends first, ErrClosed
// once the controller is stopping, a *MarshalError or a
// *MessageTooLargeError: msg is larger than MaxMessageSize, or than the
// consumer takes (it says so as soon as it speaks).
//
// Send keeps the serialized message until it is confirmed; with the Bytes
// serializer that is msg itself, which must not be modified after Send.
func (p *ProducerController[T]) Send(ctx context.Context, msg T) (SeqNr, error) {
	seqNr, _, err := p.send(ctx, msg, false, true)
	return seqNr, err
}

// TrySend is Send without the wait: when the controller has not asked for
// another message (the consumer's window is full) it returns ErrNoDemand at
// once.
func (p *ProducerController[T]) TrySend(msg T) (SeqNr, error) {
	seqNr, _, err := p.send(context.Background(), msg, false, false)
	return seqNr, err
}

// SendWithConfirmation is Send with a reply: the returned Confirmation
// resolves once the consumer application has confirmed the message. The
// message carries an ack flag so the consumer reports its confirmation at
// once instead of with its next window request.
func (p *ProducerController[T]) SendWithConfirmation(ctx context.Context, msg T) (*Confirmation, error) {
	_, c, err := p.send(ctx, msg, true, true)
	return c, err
}

// TrySendWithConfirmation is SendWithConfirmation without the wait: it
// returns ErrNoDemand at once when the consumer's window is full.
func (p *ProducerController[T]) TrySendWithConfirmation(msg T) (*Confirmation, error) {
	_, c, err := p.send(context.Background(), msg, true, false)
	return c, err
}

// Outgoing is a message with what goes with it, for SendMessage.
type Outgoing[T any] struct {
	Message T
	// Headers travel with the message, inside the protocol's frames, so
	// they survive chunking, resends and the durable queue; the consumer
	// finds them in Delivery.Headers. Their limits are MaxHeaders,
	// MaxHeaderBytes and MaxHeaderName; past them SendMessage returns a
	// *HeaderError. SendMessage checks them and keeps the slice, not a
	// copy, until the message is confirmed (it encodes them into each frame
	// that carries them): do not change it after, as for a []byte message.
	Headers Headers
	// Confirm asks for a Confirmation, as SendWithConfirmation does.
	Confirm bool
	// NoWait makes SendMessage return ErrNoDemand rather than wait, as
	// TrySend does.
	NoWait bool
}

// SendMessage is what Send, TrySend, SendWithConfirmation and
// TrySendWithConfirmation do, with headers: it returns the message's
// sequence number and, with m.Confirm, its Confirmation.
func (p *ProducerController[T]) SendMessage(ctx context.Context, m Outgoing[T]) (SeqNr, *Confirmation, error) {
	if err := checkHeaders(m.Headers); err != nil {
		return 0, nil, err
	}
	return p.submit(ctx, m.Message, m.Headers, m.Confirm, !m.NoWait)
}

func (p *ProducerController[T]) send(ctx context.Context, msg T, withReply, wait bool) (SeqNr, *Confirmation, error) {
	return p.submit(ctx, msg, nil, withReply, wait)
}

// submit prepares msg (its chunks: the first holds less, to leave room
// for the headers h) and offers it to the intake.
func (p *ProducerController[T]) submit(ctx context.Context, msg T, h Headers, withReply, wait bool) (SeqNr, *Confirmation, error) {
	a, err := p.prepare(msg, h)
	if err != nil {
		return 0, nil, err
	}
	return p.intake.offer(ctx, a, withReply, wait)
}

// prepare serializes msg and lays out its chunks, for the intake.
func (p *ProducerController[T]) prepare(msg T, h Headers) (accepted, error) {
	payload, err := p.ser.Marshal(msg)
	if err != nil {
		return accepted{}, &MarshalError{Err: err}
	}
	a := accepted{payload: payload, headers: h, chunks: 1, firstLen: len(payload)}
	room := p.settings.ChunkSize
	if n := headersLen(h); n > 0 {
		if room -= headersRoom(n); room < 1 {
			return accepted{}, &HeaderError{Reason: fmt.Sprintf("%d bytes of headers do not fit a chunk of %d bytes (ChunkSize, lowered to the carrier's frames)", n, p.settings.ChunkSize)}
		}
	}
	if len(payload) > room {
		a.firstLen = room
		a.chunks = 1 + (len(payload)-room+p.settings.ChunkSize-1)/p.settings.ChunkSize
	}
	return a, nil
}

// Demand reports how many more sequence numbers the controller asks for
// right now: 0 means Send would wait and TrySend would fail.
func (p *ProducerController[T]) Demand() int { return int(p.intake.demandNow()) }

// Run runs the controller until ctx ends (it returns ctx's error), Close or
// Shutdown stops it (nil), or the link fails for good (that error). A
// controller runs once; a second Run returns ErrAlreadyRunning, and Run
// after Close returns ErrClosed.
func (p *ProducerController[T]) Run(ctx context.Context) error {
	if err := p.life.begin(); err != nil {
		return err
	}
	r := newProducerRun(p)
	err := r.run(ctx)
	p.life.end(err)
	return err
}

// Shutdown stops taking messages (Send returns ErrClosed), waits until every
// message already taken is confirmed, then stops the controller. Called
// before Run, it takes effect once Run starts. If ctx ends first, it stops
// the controller anyway and returns an error that says how many messages
// were left unconfirmed.
func (p *ProducerController[T]) Shutdown(ctx context.Context) error {
	if !p.life.requestDrain() {
		return p.Close()
	}
	select {
	case <-p.life.done:
		return nil
	case <-ctx.Done():
		unconfirmed := p.stats.unconfirmedNow()
		p.Close()
		return fmt.Errorf("delivery: producer shut down with %d sequence numbers unconfirmed: %w", unconfirmed, context.Cause(ctx))
	}
}

// Close stops the controller at once, waits for its goroutines and closes
// the link. Messages not yet confirmed stay unconfirmed; pending
// Confirmations resolve with ErrClosed. Close is idempotent.
func (p *ProducerController[T]) Close() error {
	if p.life.stop() {
		// Never ran: nothing owns the intake and the link but us.
		for _, a := range p.intake.close(ErrClosed) {
			if a.reply != nil {
				a.reply.fail(ErrClosed)
			}
		}
		if p.settings.DurableQueue != nil {
			p.settings.DurableQueue.Close()
		}
		return p.link.Close()
	}
	return nil
}
