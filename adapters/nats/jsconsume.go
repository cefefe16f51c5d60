package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
)

// jsConsumer feeds a consumer end from the stream's durable pull consumer.
// Every frame delivered is held until the consumer controller releases it
// (then acked) or the link closes (then nak'ed, so the next consumer end
// gets it at once). Frames held longer than a third of AckWait are kept
// alive with in-progress acks, so the server does not deliver a copy of a
// frame the application is still working on.
//
// It runs two goroutines: one sends the in-progress acks, one recreates
// the stream and consumer when the server lost them (a memory stream across
// a restart, or a consumer deleted by hand).
type jsConsumer struct {
	l       *Link
	js      jetstream.JetStream
	ackWait time.Duration

	// On servers before 2.10 a pull request outlives the subscription that
	// made it, and the server hands the first frame it delivers next (a
	// nak'ed one included) to it, lost until AckWait. There the pull asks
	// with a short expiry and Close naks with a delay that outlasts it.
	pullExpiry time.Duration // 0: the client's default
	nakDelay   time.Duration

	mu      sync.Mutex
	cc      jetstream.ConsumeContext
	held    map[*heldFrame]struct{}
	closing bool // Close began: hold what drains, hand nothing out
	swept   bool // Close nak'ed what was held: nak what still comes

	recover chan struct{} // a consume error hints that the consumer is gone
	wg      sync.WaitGroup
}

// heldFrame is a delivered frame not yet acked or nak'ed.
type heldFrame struct {
	c     *jsConsumer
	msg   jetstream.Msg
	seq   uint64    // stream sequence number
	since time.Time // delivered, or last kept alive; guarded by c.mu
}

// release acks the frame: the consumer controller is done with it.
func (h *heldFrame) release() {
	if !h.c.untrack(h) {
		return // nak'ed at Close already
	}
	if err := h.msg.Ack(); err != nil {
		h.c.l.stats.ackErrors.Add(1)
		h.c.l.log.Debug("nats: ack failed; the server delivers the frame again and the protocol drops it", "err", err)
		return
	}
	h.c.l.stats.acked.Add(1)
}

// startJSConsumer makes sure the stream and its durable consumer exist and
// starts consuming.
func startJSConsumer(ctx context.Context, l *Link) (*jsConsumer, error) {
	if pull, limit := l.carrier.cfg.JetStream.PullMaxBytes, int(l.conn.nc.MaxPayload()); pull < limit {
		// The server would never deliver a frame larger than one pull.
		return nil, &ConfigError{Field: "JetStream.PullMaxBytes", Value: pull,
			Reason: fmt.Sprintf("below the server's max_payload of %d bytes", limit)}
	}
	js, err := l.newJetStream()
	if err != nil {
		return nil, fmt.Errorf("nats: jetstream for stream %s: %w", l.key.stream, err)
	}
	if l.maxFrame, err = l.ensureStream(ctx, js); err != nil {
		return nil, err
	}
	cons, err := l.ensureConsumer(ctx, js)
	if err != nil {
		return nil, err
	}
	c := &jsConsumer{
		l:       l,
		js:      js,
		ackWait: cons.CachedInfo().Config.AckWait,
		held:    map[*heldFrame]struct{}{},
		recover: make(chan struct{}, 1),
	}
	if c.ackWait <= 0 {
		c.ackWait = DefaultAckWait
	}
	if version := l.conn.nc.ConnectedServerVersion(); versionBefore(version, 2, 10) {
		c.pullExpiry, c.nakDelay = legacyPullExpiry, legacyPullExpiry+legacyPullExpiry/2
		l.log.Info("nats: server before 2.10: frames nak'ed at Close come back after a delay that outlasts stale pull requests",
			"server_version", version, "delay", c.nakDelay)
	}
	if err := c.consume(cons); err != nil {
		return nil, err
	}
	c.wg.Add(2)
	go c.keepAlive()
	go c.recoverLost()
	return c, nil
}

// consume starts pulling from cons, replacing the previous pull.
func (c *jsConsumer) consume(cons jetstream.Consumer) error {
	opts := []jetstream.PullConsumeOpt{
		jetstream.PullMaxBytes(c.l.carrier.cfg.JetStream.PullMaxBytes),
		jetstream.ConsumeErrHandler(c.onConsumeError),
	}
	if c.pullExpiry > 0 {
		opts = append(opts, jetstream.PullExpiry(c.pullExpiry))
	}
	cc, err := cons.Consume(c.onMsg, opts...)
	if err != nil {
		return fmt.Errorf("nats: consume from jetstream stream %s: %w", c.l.names.jsStream, err)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		cc.Stop()
		return nil
	}
	previous := c.cc
	c.cc = cc
	c.mu.Unlock()
	if previous != nil {
		previous.Stop()
	}
	return nil
}

// onMsg holds a delivered frame and hands it to Receive. It runs on the
// pull subscription's goroutine and blocks while Receive is behind; the
// pull asks for no more than PullMaxBytes ahead.
func (c *jsConsumer) onMsg(msg jetstream.Msg) {
	h := &heldFrame{c: c, msg: msg, since: time.Now()}
	if md, err := msg.Metadata(); err == nil {
		h.seq = md.Sequence.Stream
		if md.NumDelivered > 1 {
			c.l.stats.redelivered.Add(1)
		}
	}
	c.mu.Lock()
	if c.swept {
		c.mu.Unlock()
		c.nak(msg) // after Close's sweep: straight back to the server
		return
	}
	c.held[h] = struct{}{}
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return // Close naks it with the rest, in order
	}
	select {
	case c.l.in <- delivery.Frame{Data: msg.Data(), Release: h.release}:
	case <-c.l.closed: // still held: Close naks it
	}
}

func (c *jsConsumer) onConsumeError(_ jetstream.ConsumeContext, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted),
		errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.Is(err, natsgo.ErrNoResponders):
		c.l.log.Warn("nats: jetstream consumer not answering; checking that it exists", "err", err)
		select {
		case c.recover <- struct{}{}:
		default:
		}
	case errors.Is(err, jetstream.ErrNoHeartbeat), errors.Is(err, natsgo.ErrConnectionClosed):
		// Pull resumes by itself after a reconnect; a closed connection is
		// the link's to report.
		c.l.log.Debug("nats: jetstream consume", "err", err)
	default:
		c.l.log.Warn("nats: jetstream consume error", "err", err)
	}
}

func (c *jsConsumer) untrack(h *heldFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[h]; !ok {
		return false
	}
	delete(c.held, h)
	return true
}

func (c *jsConsumer) nak(msg jetstream.Msg) {
	var err error
	if c.nakDelay > 0 {
		err = msg.NakWithDelay(c.nakDelay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		c.l.stats.ackErrors.Add(1)
		return
	}
	c.l.stats.naked.Add(1)
}

// keepAlive sends in-progress acks for frames held longer than a third of
// AckWait, until the link closes.
func (c *jsConsumer) keepAlive() {
	defer c.wg.Done()
	every := max(c.ackWait/3, 10*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-tick.C:
		case <-c.l.closed:
			return
		}
		now := time.Now()
		due = due[:0]
		c.mu.Lock()
		for h := range c.held {
			if now.Sub(h.since) >= every {
				h.since = now
				due = append(due, h.msg)
			}
		}
		c.mu.Unlock()
		for _, msg := range due {
			if err := msg.InProgress(); err != nil {
				c.l.stats.ackErrors.Add(1)
				continue
			}
			c.l.stats.keptAlive.Add(1)
		}
	}
}

// recoverLost makes the stream and consumer again when a consume error
// hints that the server lost them, and pulls from the new consumer.
func (c *jsConsumer) recoverLost() {
	defer c.wg.Done()
	for {
		select {
		case <-c.recover:
		case <-c.l.closed:
			return
		}
		wait := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second})
		for !c.tryRecover() {
			if !backoff.Sleep(c.l.life, wait.Next()) { // life ends as closed closes
				return
			}
		}
	}
}

// tryRecover reports whether the consumer is there (again).
func (c *jsConsumer) tryRecover() bool {
	if !c.l.conn.waitConnected(c.l.closed) {
		return true // closing: nothing to recover
	}
	ctx, cancel := context.WithTimeout(c.l.life, 5*time.Second)
	defer cancel()
	_, err := c.js.Consumer(ctx, c.l.names.jsStream, c.l.carrier.cfg.JetStream.Durable)
	if err == nil {
		return true // there: the pull resumes by itself
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		c.l.log.Debug("nats: jetstream consumer check failed; retrying", "err", err)
		return false
	}
	c.l.log.Warn("nats: jetstream consumer lost by the server; creating it again (the protocol resends what it held)", "err", err)
	if _, err := c.l.ensureStream(ctx, c.js); err != nil {
		c.l.log.Warn("nats: recreate jetstream stream", "err", err)
		return false
	}
	cons, err := c.l.ensureConsumer(ctx, c.js)
	if err == nil {
		err = c.consume(cons)
	}
	if err != nil {
		c.l.log.Warn("nats: recreate jetstream consumer", "err", err)
		return false
	}
	return true
}

// stop ends consuming: the pull drains what it fetched ahead of Receive,
// then every frame held is nak'ed, oldest first, so that the next consumer
// end gets them at once and in order. The link's closed channel is closed.
func (c *jsConsumer) stop() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.wg.Wait() // they stop at the link's close; none replaces the pull now
	c.mu.Lock()
	cc := c.cc
	c.mu.Unlock()
	if cc != nil {
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(closeFlushTimeout):
			c.l.log.Debug("nats: jetstream pull did not drain in time; what it still holds is delivered again after AckWait")
		}
	}
	c.mu.Lock()
	c.swept = true
	held := make([]*heldFrame, 0, len(c.held))
	for h := range c.held {
		held = append(held, h)
	}
	clear(c.held)
	c.mu.Unlock()
	slices.SortFunc(held, func(a, b *heldFrame) int { return cmp.Compare(a.seq, b.seq) })
	for _, h := range held {
		c.nak(h.msg)
	}
}

// legacyPullExpiry is how long a pull request lives on servers before 2.10.
const legacyPullExpiry = 2 * time.Second

// versionBefore reports whether a server version ("2.9.10") is before
// major.minor. An unreadable version is taken as recent.
func versionBefore(version string, major, minor int) bool {
	var gotMajor, gotMinor int
	if _, err := fmt.Sscanf(version, "%d.%d", &gotMajor, &gotMinor); err != nil {
		return false
	}
	return gotMajor < major || (gotMajor == major && gotMinor < minor)
}
