package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ConsumerController receives a producer's frames from a Link, buffers them,
// drops duplicates, asks for what was lost, reassembles chunked messages,
// and hands the application one message at a time, in order. It grants the
// producer more window as the application confirms.
//
// The application calls Receive for the next Delivery and calls its Confirm
// once done with it. Confirmations are cumulative: confirming a delivery
// confirms every one received before it, so an application that processes
// messages in batches may confirm the last of a batch. A frame from a broker
// is released (acked) only when all of its messages are confirmed.
//
// Run starts three goroutines: the controller, which owns all protocol
// state; a reader, which receives and checks frames; a writer, which sends
// control frames. Run blocks until the controller stops, waits for the
// three, and closes the link (see NewConsumerController).
type ConsumerController[T any] struct {
	settings ConsumerSettings
	ser      Serializer[T]
	link     Link
	ready    *readyQueue
	stats    consumerCounters
	life     lifecycle

	// A delivery ReceiveBatch could not unmarshal waits here for the next
	// call, so the batch before it goes out whole.
	asideMu  sync.Mutex
	aside    Delivery[T]
	asideErr error
	asideOK  bool
	// hasAside is asideOK, read without the lock: Receive checks it on
	// every call, and a delivery is set aside only after a failed
	// unmarshal.
	hasAside atomic.Bool
}

// Delivery is one message handed to the application.
//
// Its Headers' strings share the bytes of the frame the message came in, as
// a []byte Message does, and their slice is cut from one that holds the
// headers of a few dozen messages: a Delivery kept keeps those alive. The
// slice is the application's to change (a header replaced, one appended).
type Delivery[T any] struct {
	Message       T
	SeqNr         SeqNr   // its sequence number (for a chunked message, that of its last chunk)
	ProducerID    string  // the producer that sent it
	ProducerEpoch uint64  // the lifetime of the producer that sent it
	Headers       Headers // what the producer sent with it (names in lower case); nil for none

	gen *readyGen // its numbering's confirmations
}

// Confirm tells the controller the application is done with this message
// and every one delivered before it. It does not block. Confirming twice, or
// after the producer's numbering changed, does nothing.
func (d Delivery[T]) Confirm() {
	if d.gen != nil {
		d.gen.confirmUpTo(d.SeqNr)
	}
}

// NewConsumerController returns a controller that receives T from link.
// serializer may be nil when T is []byte or string. The settings are
// checked here; an invalid one gives a *SettingError.
//
// The controller owns link from this call on, whether it succeeds or not:
// a failed construction closes it, a controller closes it when it stops.
func NewConsumerController[T any](link Link, serializer Serializer[T], settings ConsumerSettings) (*ConsumerController[T], error) {
	c, err := newConsumerController(link, serializer, settings)
	if err != nil && link != nil {
		link.Close()
	}
	return c, err
}

func newConsumerController[T any](link Link, serializer Serializer[T], settings ConsumerSettings) (*ConsumerController[T], error) {
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
	return &ConsumerController[T]{
		settings: s,
		ser:      ser,
		link:     link,
		ready:    newReadyQueue(),
		life:     newLifecycle(),
	}, nil
}

// Epoch returns this lifetime's epoch.
func (c *ConsumerController[T]) Epoch() uint64 { return c.settings.Epoch }

// Receive waits for the next message. It returns ErrClosed once the
// controller has stopped and every message it had buffered was received,
// and ctx's error if ctx ends first. When the serializer fails it returns a
// valid Delivery (with the zero Message) and an *UnmarshalError: confirm the
// delivery to skip the message. Receive may be called from several
// goroutines, but deliveries come in order only to a single receiver.
func (c *ConsumerController[T]) Receive(ctx context.Context) (Delivery[T], error) {
	if d, err, ok := c.takeSetAside(); ok {
		return d, err
	}
	m, gen, err := c.ready.pop(ctx)
	if err != nil {
		return Delivery[T]{}, err
	}
	return c.delivery(m, gen)
}

// ReceiveBatch waits for the next message like Receive, then appends to dst
// every message already waiting, up to max in all, without waiting more.
// Confirming the last of them confirms them all, so a consumer that
// processes in batches confirms once per batch. A message whose payload
// does not unmarshal ends a batch; the next call returns it, alone, with its
// *UnmarshalError.
func (c *ConsumerController[T]) ReceiveBatch(ctx context.Context, dst []Delivery[T], max int) ([]Delivery[T], error) {
	d, err := c.Receive(ctx)
	var ue *UnmarshalError
	if errors.As(err, &ue) {
		return append(dst, d), err
	}
	if err != nil {
		return dst, err
	}
	dst = append(dst, d)
	c.ready.takeEach(max-len(dst), func(m readyMsg, gen *readyGen) bool {
		d, err := c.delivery(m, gen)
		if err != nil {
			c.setAside(d, err)
			return false
		}
		dst = append(dst, d)
		return true
	})
	return dst, nil
}

func (c *ConsumerController[T]) delivery(m readyMsg, gen *readyGen) (Delivery[T], error) {
	d := Delivery[T]{SeqNr: m.seqNr, ProducerID: gen.id.id, ProducerEpoch: gen.id.epoch, Headers: m.headers, gen: gen}
	var err error
	if d.Message, err = c.ser.Unmarshal(m.payload); err != nil {
		return d, &UnmarshalError{SeqNr: m.seqNr, Payload: m.payload, Err: err}
	}
	return d, nil
}

func (c *ConsumerController[T]) setAside(d Delivery[T], err error) {
	c.asideMu.Lock()
	c.aside, c.asideErr, c.asideOK = d, err, true
	c.hasAside.Store(true)
	c.asideMu.Unlock()
}

func (c *ConsumerController[T]) takeSetAside() (Delivery[T], error, bool) {
	if !c.hasAside.Load() {
		return Delivery[T]{}, nil, false
	}
	c.asideMu.Lock()
	defer c.asideMu.Unlock()
	if !c.asideOK {
		return Delivery[T]{}, nil, false
	}
	d, err := c.aside, c.asideErr
	c.aside, c.asideErr, c.asideOK = Delivery[T]{}, nil, false
	c.hasAside.Store(false)
	return d, err, true
}

// Run runs the controller until ctx ends (it returns ctx's error), Close or
// Shutdown stops it (nil), or it fails for good: the link failed, or the
// producer sent a message larger than MaxMessageSize. A controller runs
// once; a second Run returns ErrAlreadyRunning, and Run after Close returns
// ErrClosed.
func (c *ConsumerController[T]) Run(ctx context.Context) error {
	if err := c.life.begin(); err != nil {
		return err
	}
	r := newConsumerRun(c)
	err := r.run(ctx)
	c.life.end(err)
	return err
}

// Shutdown is deliver-then-stop: the controller takes no more frames and
// grants no more window, hands out every message it has buffered, waits for
// the application to confirm them (Receive must go on being called), tells
// the producer, and stops. Frames it did not take stay with the carrier. If
// ctx ends first it stops anyway and returns an error saying how many
// messages were left.
func (c *ConsumerController[T]) Shutdown(ctx context.Context) error {
	if !c.life.requestDrain() {
		return c.Close()
	}
	select {
	case <-c.life.done:
		return nil
	case <-ctx.Done():
		left := c.stats.undeliveredNow()
		c.Close()
		return fmt.Errorf("delivery: consumer shut down with %d messages not confirmed: %w", left, context.Cause(ctx))
	}
}

// Close stops the controller at once, waits for its goroutines and closes
// the link. Buffered messages are dropped (a broker keeps them: they were not
// released); Receive returns ErrClosed. Close is idempotent.
func (c *ConsumerController[T]) Close() error {
	if c.life.stop() {
		c.ready.close(ErrClosed, true)
		return c.link.Close()
	}
	return nil
}
