package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/delivery/backoff"
)

// publisher carries one direction of a link to the broker: it publishes the
// frames Send hands it to one queue, as mandatory, in confirm mode, keeping
// each until the broker confirms it. A frame whose confirm is negative or
// lost with its channel, or that the broker returned, is published again,
// in order with the frames after it, on a fresh channel (the protocol drops
// the duplicates this makes).
//
// It runs one goroutine (run), which alone owns the AMQP channel and the
// pending frames.
type publisher struct {
	cfg        *Config
	keeper     *keeper
	queue      string // the routing key
	persistent bool
	log        *slog.Logger

	frames chan []byte // Send -> run; taken only while pending has room

	failure errBox // why frames cannot be routed now; Send returns it
	down    errBox // why the last session ended or could not open

	connected  atomic.Bool
	channel    atomic.Pointer[amqp091.Channel] // the session's, for tests that break it
	reconnects atomic.Uint64
	stats      *linkCounters
	done       chan struct{}
}

// outbound is a frame published and not confirmed yet.
type outbound struct {
	body    []byte
	confirm *amqp091.DeferredConfirmation // of its latest publish
}

// pubSession is one AMQP channel in confirm mode.
type pubSession struct {
	ch      *amqp091.Channel
	closed  chan *amqp091.Error
	returns chan amqp091.Return
}

func newPublisher(cfg *Config, k *keeper, queue string, persistent bool, stats *linkCounters, log *slog.Logger) *publisher {
	return &publisher{
		cfg: cfg, keeper: k, queue: queue, persistent: persistent, stats: stats,
		log:    log.With("queue", queue, "direction", "publish"),
		frames: make(chan []byte),
		done:   make(chan struct{}),
	}
}

// start runs the publisher until ctx ends, with the session Link opened.
func (p *publisher) start(ctx context.Context, first *pubSession) {
	p.channel.Store(first.ch)
	p.connected.Store(true)
	go p.run(ctx, first)
}

func (p *publisher) run(ctx context.Context, first *pubSession) {
	defer close(p.done)
	var (
		pending []*outbound
		sess    = first
		reopen  = p.cfg.reconnectWaits()
		// A nack or a return on a live channel may come again at once:
		// publishing the same frames again waits longer each time, until
		// a confirm comes through.
		resend = p.cfg.reconnectWaits()
	)
	defer func() {
		if sess != nil {
			_ = sess.ch.Close()
		}
		p.connected.Store(false)
	}()
	// restart drops the session; the next turn opens another and
	// publishes everything pending again. After a nack, a return or a
	// channel error, which may come again at once, it first waits, longer
	// each time until a confirm comes through; after the loss of the
	// connection the keeper's redialling sets the pace. It reports false
	// once ctx has ended.
	restart := func(reason error) bool {
		select {
		case err, ok := <-sess.closed:
			if ok && err != nil {
				reason = err // the cause, where reason is a mere symptom
			}
		default:
		}
		p.down.set(reason)
		p.connected.Store(false)
		p.channel.Store(nil)
		_ = sess.ch.Close()
		sess = nil
		if ctx.Err() != nil {
			return false
		}
		if isChannelException(reason) || errors.Is(reason, errConfirmLost) || errors.Is(reason, ErrUnroutable) {
			d := resend.Next()
			p.log.Warn("publishing again on a new channel", "reason", reason, "pending", len(pending), "in", d)
			return backoff.Sleep(ctx, d)
		}
		p.log.Warn("publishing channel lost", "reason", reason, "pending", len(pending))
		return true
	}

	for ctx.Err() == nil {
		if sess == nil {
			s, ok := openRetrying(ctx, p.open, reopen, &p.down, p.log, "publish")
			if !ok {
				return
			}
			sess = s
			p.failure.set(nil)
			p.channel.Store(s.ch)
			p.connected.Store(true)
			n := p.reconnects.Add(1)
			p.log.Info("publishing again", "reconnects", n, "republishing", len(pending))
			if err := p.publishAll(sess, pending); err != nil && !restart(err) {
				return
			}
			continue
		}

		var in chan []byte
		if len(pending) < p.cfg.MaxPendingConfirms {
			in = p.frames
		}
		var head <-chan struct{}
		if len(pending) > 0 {
			head = pending[0].confirm.Done()
		}
		select {
		case body := <-in:
			o := &outbound{body: body}
			pending = append(pending, o)
			p.stats.published.Add(1)
			if err := p.publish(sess, o); err != nil && !restart(err) {
				return
			}
		case <-head:
			var err error
			if pending, err = p.settle(sess, pending); err == nil {
				resend.Reset()
			} else if !restart(err) {
				return
			}
		case r, ok := <-sess.returns:
			if !ok {
				// The library closes it with the channel; the close's
				// reason comes next.
				sess.returns = nil
			} else if !restart(p.returned(r)) {
				return
			}
		case err := <-sess.closed:
			if !restart(closeReason(err)) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// open opens a channel in confirm mode on the current connection and
// declares the queue. On failure it returns the connection's loss signal
// to wait on, if it has one.
func (p *publisher) open(ctx context.Context) (*pubSession, <-chan struct{}, error) {
	conn, lost, err := p.keeper.current(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, lost, err
	}
	s := &pubSession{
		ch:     ch,
		closed: ch.NotifyClose(make(chan *amqp091.Error, 1)),
		// Room for a return of every frame that may be pending, so the
		// library never waits on this listener.
		returns: ch.NotifyReturn(make(chan amqp091.Return, p.cfg.MaxPendingConfirms)),
	}
	if err := declare(ch, p.cfg, p.queue); err != nil {
		_ = ch.Close()
		if isChannelException(err) {
			// The topology is missing or incompatible, not the connection:
			// Send says so until it is back.
			p.failure.set(err)
		}
		return nil, lost, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, lost, err
	}
	return s, lost, nil
}

// publishAll publishes pending again, in order, on a new session.

// publishAll publishes pending again, in order, on a new session.
func (p *publisher) publishAll(s *pubSession, pending []*outbound) error {
	for _, o := range pending {
		if err := p.publish(s, o); err != nil {
			return err
		}
		p.stats.republished.Add(1)
	}
	return nil
}

func (p *publisher) publish(s *pubSession, o *outbound) error {
	mode := amqp091.Transient
	if p.persistent {
		mode = amqp091.Persistent
	}
	// Not the link's context: a frame Send handed over is published even
	// if the link is closing, so that a controller's last frame before it
	// closes the link (a consumer's final confirmation) goes out ahead of
	// the channel's close.
	c, err := s.ch.PublishWithDeferredConfirmWithContext(context.Background(), p.cfg.Exchange, p.queue, true, false,
		amqp091.Publishing{DeliveryMode: mode, Body: o.body})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	o.confirm = c
	return nil
}

// errConfirmLost is why a session is restarted after a negative confirm,
// or a confirm lost with its channel.
var errConfirmLost = errors.New("publisher confirm negative or lost")

// settle drops the confirmed frames at the head of pending. It fails when
// the head's confirm is negative or lost, or when the broker returned a
// frame: the session must be restarted and the rest published again.
func (p *publisher) settle(s *pubSession, pending []*outbound) ([]*outbound, error) {
	for len(pending) > 0 {
		o := pending[0]
		select {
		case <-o.confirm.Done():
		default:
			return pending, nil
		}
		// The broker sends a basic.return before the basic.ack of the same
		// frame, and the library hands it to s.returns before it resolves
		// the confirm: look for one before counting the frame delivered.
		select {
		case r, ok := <-s.returns:
			if ok {
				return pending, p.returned(r)
			}
		default:
		}
		if !o.confirm.Acked() {
			p.stats.nacked.Add(1)
			p.log.Debug("confirm negative or lost; publishing again from this frame", "pending", len(pending))
			return pending, errConfirmLost
		}
		p.stats.confirmed.Add(1)
		pending[0] = nil
		pending = pending[1:]
	}
	return pending, nil
}

// returned notes a frame the broker returned, and says why.
func (p *publisher) returned(r amqp091.Return) error {
	p.stats.returned.Add(1)
	err := &UnroutableError{Exchange: r.Exchange, RoutingKey: r.RoutingKey, Code: r.ReplyCode, Reason: r.ReplyText}
	p.failure.set(err)
	if p.cfg.Passive {
		p.log.Error("broker returned a frame; is the queue there, and bound?", "err", err)
	} else {
		p.log.Warn("broker returned a frame; declaring the queue again", "err", err)
	}
	return err
}

// isChannelException reports whether err is the broker's refusal of a
// request (a soft error that closes the channel only: 403, 404, 405, 406),
// as opposed to the loss of the connection.
func isChannelException(err error) bool {
	var ae *amqp091.Error
	return errors.As(err, &ae) && ae.Server && ae.Recover
}

// openRetrying opens a session, retrying with backoff (and logging why,
// as an error for a broker's refusal, which an operator must fix) until it
// succeeds or ctx ends. It reports false when ctx ended.
func openRetrying[S any](ctx context.Context, open func(context.Context) (S, <-chan struct{}, error), wait *backoff.Backoff, down *errBox, log *slog.Logger, verb string) (S, bool) {
	for {
		sess, lost, err := open(ctx)
		if err == nil {
			wait.Reset()
			return sess, true
		}
		if ctx.Err() != nil {
			return sess, false
		}
		down.set(err)
		d := wait.Next()
		if isChannelException(err) {
			log.Error("cannot "+verb+"; retrying", "err", err, "retry_in", d)
		} else {
			log.Info("cannot "+verb+" yet; retrying", "err", err, "retry_in", d)
		}
		if !waitLoss(ctx, lost, d) {
			return sess, false
		}
	}
}

// waitLoss waits for d, or less if lost closes (the keeper noticed the
// connection's loss and is reconnecting). It reports false once ctx ends.
func waitLoss(ctx context.Context, lost <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-lost:
	case <-ctx.Done():
		return false
	}
	return true
}
