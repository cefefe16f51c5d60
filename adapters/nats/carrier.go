package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/adapters/internal/linkset"
	"github.com/bridge-mq/bridge/delivery"
)

// Carrier opens links over a NATS server: a delivery.Carrier, which also
// reports its own connection (delivery.StatusReporter) and deletes what a
// stream leaves in JetStream (delivery.StreamDeleter). It keeps a
// connection of its own to check the server and manage JetStream streams;
// each link it opens dials a connection of its own, so that one stream's
// traffic, slow consumer or reconnect does not stall another's.
//
// A stream has at most one link per end on a Carrier: opening an end again
// closes the previous link of that end first, as a restarted process would.
// Close closes every link the carrier opened, then its own connection.
type Carrier struct {
	cfg  Config
	conn *conn
	js   jetstream.JetStream // ModeJetStream

	mu     sync.Mutex
	closed bool
	links  map[linkKey]*Link

	closeOnce sync.Once
}

type linkKey struct {
	stream string
	end    delivery.End
}

var (
	_ delivery.Carrier        = (*Carrier)(nil)
	_ delivery.StatusReporter = (*Carrier)(nil)
	_ delivery.StreamDeleter  = (*Carrier)(nil)
)

// New validates cfg and connects to the server. An unreachable server is a
// *ConnectError naming the URL; in ModeJetStream a server without JetStream
// is an error wrapping ErrJetStreamUnavailable.
func New(ctx context.Context, cfg Config) (*Carrier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc // as in open: nats.go wants a deadline
		ctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
		defer cancel()
	}
	conn, err := dial(ctx, &cfg, cfg.Name+" carrier", cfg.Logger)
	if err != nil {
		return nil, err
	}
	c := &Carrier{cfg: cfg, conn: conn, links: map[linkKey]*Link{}}
	if cfg.Mode == ModeJetStream {
		if c.js, err = jetstream.New(conn.nc); err == nil {
			_, err = c.js.AccountInfo(ctx)
		}
		if err != nil {
			conn.close(0)
			if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
				return nil, fmt.Errorf("%w on %s (%w)", ErrJetStreamUnavailable, redactURL(cfg.URL), err)
			}
			return nil, fmt.Errorf("nats: jetstream on %s: %w", redactURL(cfg.URL), err)
		}
	}
	cfg.Logger.Info("nats: carrier connected", "server", conn.nc.ConnectedUrlRedacted(), "mode", cfg.Mode,
		"max_payload", conn.nc.MaxPayload())
	return c, nil
}

// Mode is the carrier's mode.
func (c *Carrier) Mode() Mode { return c.cfg.Mode }

// Status reports the carrier's own connection: whether it is up, how often
// it reconnected, and while it is down, why.
func (c *Carrier) Status() delivery.LinkStatus { return c.conn.status() }

// MaxFrameSize is the largest frame the carrier's links take on the server
// it is connected to: max_payload, less room for the Nats-Msg-Id header in
// ModeJetStream. A JetStream stream with a lower max_msg_size lowers its
// links' limit further.
func (c *Carrier) MaxFrameSize() int {
	limit := int(c.conn.nc.MaxPayload())
	if c.cfg.Mode == ModeJetStream {
		limit -= jsHeaderRoom
	}
	return limit
}

// Link opens the end of stream named by end, and returns once that end can
// receive: subscriptions are registered with the server and, in
// ModeJetStream, the stream's JetStream stream (and at the consumer end its
// durable consumer) exists. A previous link of the same stream and end on
// this Carrier is closed first. The link dials its own connection: an
// unreachable server is a *ConnectError.
func (c *Carrier) Link(ctx context.Context, stream string, end delivery.End) (*Link, error) {
	if !validName(stream, maxStreamName) {
		return nil, &StreamNameError{Stream: stream}
	}
	if end != delivery.ProducerEnd && end != delivery.ConsumerEnd {
		return nil, fmt.Errorf("nats: link for stream %s: invalid end %v", stream, end)
	}
	key := linkKey{stream: stream, end: end}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	previous := c.links[key]
	c.mu.Unlock()
	if previous != nil {
		previous.Close()
	}

	l, err := c.open(ctx, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		l.Close()
		return nil, ErrClosed
	}
	previous = c.links[key] // opened meanwhile by another call
	c.links[key] = l
	c.mu.Unlock()
	if previous != nil {
		previous.Close()
	}
	return l, nil
}

// OpenLink is Link, for delivery.Carrier.
func (c *Carrier) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	return linkset.Opened(c.Link(ctx, stream, end))
}

func (c *Carrier) open(ctx context.Context, key linkKey) (*Link, error) {
	if _, ok := ctx.Deadline(); !ok {
		// nats.go's flushes and JetStream calls need a deadline; a caller
		// without one gets ours rather than an error.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		defer cancel()
	}
	log := c.cfg.Logger.With("stream", key.stream, "end", key.end.String())
	conn, err := dial(ctx, &c.cfg, fmt.Sprintf("%s %s %s", c.cfg.Name, key.stream, key.end), log)
	if err != nil {
		return nil, err
	}
	l := &Link{
		carrier:  c,
		key:      key,
		names:    c.cfg.names(key.stream),
		log:      log,
		conn:     conn,
		in:       make(chan delivery.Frame, inboxSize),
		closed:   make(chan struct{}),
		maxFrame: int(conn.nc.MaxPayload()),
	}
	l.life, l.endLife = context.WithCancel(context.Background())
	fail := func(err error) (*Link, error) {
		l.stop(0)
		return nil, err
	}
	switch {
	case c.cfg.Mode == ModeJetStream && key.end == delivery.ProducerEnd:
		if err := l.subscribe(); err != nil {
			return fail(err)
		}
		if l.pub, err = startJSPublisher(ctx, l); err != nil {
			return fail(err)
		}
	case c.cfg.Mode == ModeJetStream:
		if l.cons, err = startJSConsumer(ctx, l); err != nil {
			return fail(err)
		}
	default:
		if err := l.subscribe(); err != nil {
			return fail(err)
		}
	}
	// The server has the subscriptions once it answered a ping after them.
	if err := conn.nc.FlushWithContext(ctx); err != nil {
		return fail(fmt.Errorf("nats: link for stream %s: %w", key.stream, err))
	}
	log.Debug("nats: link open", "max_frame_size", l.maxFrame)
	return l, nil
}

// forget drops l from the carrier's links, if it is still there.
func (c *Carrier) forget(l *Link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.links[l.key] == l {
		delete(c.links, l.key)
	}
}

// DeleteStream deletes what the server keeps for stream: in ModeJetStream
// its JetStream stream, with its consumer and the frames stored; nothing in
// ModeCore. A stream that does not exist is not an error. Close the
// stream's links first; they would otherwise create it again.
func (c *Carrier) DeleteStream(ctx context.Context, stream string) error {
	if !validName(stream, maxStreamName) {
		return &StreamNameError{Stream: stream}
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if c.cfg.Mode != ModeJetStream {
		return nil
	}
	name := c.cfg.names(stream).jsStream
	if err := c.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("nats: delete jetstream stream %s: %w", name, err)
	}
	return nil
}

// Close closes every link the carrier opened, then its own connection.
// Idempotent.
func (c *Carrier) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		links := make([]*Link, 0, len(c.links))
		for _, l := range c.links {
			links = append(links, l)
		}
		c.mu.Unlock()
		for _, l := range links {
			l.Close()
		}
		c.conn.close(closeFlushTimeout)
	})
	return nil
}
