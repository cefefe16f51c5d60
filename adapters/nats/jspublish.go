package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/bridge-mq/bridge/delivery"
)

// maxRepublish bounds how often one frame is published again before the
// link gives it up to the protocol's resend.
const maxRepublish = 10

// jsPublisher publishes a producer end's data frames to JetStream
// asynchronously, each with a Nats-Msg-Id of its own, and settles their
// acks in order on one goroutine. A frame whose publish failed for a
// reason that may pass (the connection dropped, the ack timed out, the
// stream did not answer) is published again with the same id, so the
// server stores it once.
type jsPublisher struct {
	l        *Link
	js       jetstream.JetStream
	idPrefix string
	seq      atomic.Uint64

	maxFrames, maxBytes int

	mu       sync.Mutex
	frames   int // published and not settled
	bytes    int
	waiting  int           // Sends waiting for room
	room     chan struct{} // closed and replaced when room frees while some wait
	failing  bool          // a run of republishes is under way (for the log)
	inflight chan *inflight
	done     chan struct{}
}

type inflight struct {
	msg   *natsgo.Msg
	fut   jetstream.PubAckFuture
	tries int
}

// startJSPublisher makes sure the link's JetStream stream exists and starts
// the goroutine that settles publishes.
func startJSPublisher(ctx context.Context, l *Link) (*jsPublisher, error) {
	js, err := l.newJetStream()
	if err != nil {
		return nil, fmt.Errorf("nats: jetstream for stream %s: %w", l.key.stream, err)
	}
	if l.maxFrame, err = l.ensureStream(ctx, js); err != nil {
		return nil, err
	}
	j := &l.carrier.cfg.JetStream
	p := &jsPublisher{
		l:         l,
		js:        js,
		idPrefix:  nuid.Next() + "-",
		maxFrames: j.MaxPendingFrames,
		maxBytes:  j.MaxPendingBytes,
		room:      make(chan struct{}),
		inflight:  make(chan *inflight, j.MaxPendingFrames),
		done:      make(chan struct{}),
	}
	go p.run()
	return p, nil
}

// send publishes a copy of frame, once there is room among the pending
// publishes.
func (p *jsPublisher) send(ctx context.Context, frame []byte) error {
	if err := p.reserve(ctx, len(frame)); err != nil {
		return err
	}
	msg := &natsgo.Msg{
		Subject: p.l.names.data,
		Data:    bytes.Clone(frame),
		Header:  natsgo.Header{jetstream.MsgIDHeader: []string{p.idPrefix + strconv.FormatUint(p.seq.Add(1), 36)}},
	}
	fut, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		p.free(len(frame))
		return err
	}
	p.inflight <- &inflight{msg: msg, fut: fut} // never blocks: reserve made room
	return nil
}

// reserve waits for room for one more pending frame of n bytes. A frame
// larger than the byte bound goes alone.
func (p *jsPublisher) reserve(ctx context.Context, n int) error {
	p.mu.Lock()
	for p.frames >= p.maxFrames || (p.frames > 0 && p.bytes+n > p.maxBytes) {
		p.waiting++
		room := p.room
		p.mu.Unlock()
		var err error
		select {
		case <-room:
		case <-ctx.Done():
			err = ctx.Err()
		case <-p.l.closed:
			err = delivery.ErrLinkClosed
		case <-p.l.conn.lost:
			err = ErrConnectionLost
		}
		p.mu.Lock()
		p.waiting--
		if err != nil {
			p.mu.Unlock()
			return err
		}
	}
	p.frames++
	p.bytes += n
	p.mu.Unlock()
	return nil
}

func (p *jsPublisher) free(n int) {
	p.mu.Lock()
	p.frames--
	p.bytes -= n
	if p.waiting > 0 {
		close(p.room)
		p.room = make(chan struct{})
	}
	p.mu.Unlock()
}

// run settles pending publishes in the order they were made, until the
// link closes. What is pending then is left to the protocol.
func (p *jsPublisher) run() {
	defer close(p.done)
	for {
		select {
		case it := <-p.inflight:
			if !p.settle(it) {
				return
			}
		case <-p.l.closed:
			return
		}
	}
}

// settle waits for the ack of it, publishing it again while that fails for a
// reason that may pass. It reports false when the link closed.
func (p *jsPublisher) settle(it *inflight) bool {
	defer p.free(len(it.msg.Data))
	for {
		var err error
		select {
		case <-it.fut.Ok():
			if it.tries > 0 {
				p.recovered()
			}
			return true
		case err = <-it.fut.Err():
		case <-p.l.closed:
			return false
		}
		if !p.republish(it, err) {
			return !p.l.isClosed()
		}
	}
}

// republish publishes it again after its publish failed with err, and
// reports whether it did.
func (p *jsPublisher) republish(it *inflight, err error) bool {
	if !mayPass(err) || it.tries >= maxRepublish {
		p.l.stats.publishFailures.Add(1)
		p.l.log.Warn("nats: jetstream publish failed; the protocol resends the frame's messages",
			"err", err, "republished", it.tries)
		return false
	}
	p.mu.Lock()
	first := !p.failing
	p.failing = true
	p.mu.Unlock()
	if first {
		p.l.log.Info("nats: jetstream publishes failed; publishing them again with the same Nats-Msg-Id", "err", err)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders) {
		// The stream may be gone (a memory stream across a server restart).
		p.recreateStream()
	}
	if !p.l.conn.waitConnected(p.l.closed) {
		return false
	}
	it.tries++
	fut, perr := p.js.PublishMsgAsync(it.msg)
	if perr != nil {
		p.l.stats.publishFailures.Add(1)
		p.l.log.Warn("nats: jetstream publish failed again; the protocol resends the frame's messages", "err", perr)
		return false
	}
	it.fut = fut
	p.l.stats.republished.Add(1)
	return true
}

func (p *jsPublisher) recovered() {
	p.mu.Lock()
	was := p.failing
	p.failing = false
	p.mu.Unlock()
	if was {
		p.l.log.Info("nats: jetstream publishes acknowledged again")
	}
}

func (p *jsPublisher) recreateStream() {
	ctx, cancel := context.WithTimeout(p.l.life, p.l.carrier.cfg.JetStream.PublishAckTimeout)
	defer cancel()
	if _, err := p.l.ensureStream(ctx, p.js); err != nil {
		p.l.log.Warn("nats: jetstream stream not available", "err", err)
	}
}

// mayPass reports whether a failed publish is worth making again.
func mayPass(err error) bool {
	return errors.Is(err, natsgo.ErrDisconnected) ||
		errors.Is(err, natsgo.ErrConnectionReconnecting) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, natsgo.ErrNoResponders) ||
		errors.Is(err, natsgo.ErrTimeout) ||
		isTransientAPIError(err)
}

// isTransientAPIError reports server answers that say "not now" (JetStream
// not ready yet after a restart, a leader being elected).
func isTransientAPIError(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.Code == 503 || apiErr.Code == 408
}

func (p *jsPublisher) stop() {
	<-p.done
}
