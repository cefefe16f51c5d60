package amqp

import (
	"context"
	"fmt"
	"sync"

	"github.com/bridge-mq/bridge/adapters/internal/linkset"
	"github.com/bridge-mq/bridge/delivery"
)

// Carrier carries the frames of any number of streams over one RabbitMQ
// broker: a delivery.Carrier, which also reports its connections
// (delivery.StatusReporter) and deletes a stream's queues
// (delivery.StreamDeleter). It owns two connections, one for publishing
// and one for consuming (a broker that blocks a publishing connection
// under a resource alarm then does not hold up the acks), and keeps both
// open: each runs a goroutine that dials again after a loss. Close closes
// every link it opened, then the connections.
type Carrier struct {
	cfg     Config
	publish *keeper
	consume *keeper

	mu     sync.Mutex
	links  map[*Link]struct{}
	closed bool
}

var (
	_ delivery.Carrier        = (*Carrier)(nil)
	_ delivery.StatusReporter = (*Carrier)(nil)
	_ delivery.StreamDeleter  = (*Carrier)(nil)
)

// New validates cfg (a *ConfigError names a bad field) and connects to the
// broker. An unreachable broker, refused credentials or a failed TLS
// handshake is a *ConnectError naming the URL; each connection attempt is
// bounded by ctx and Config.DialTimeout, and New does not retry.
func New(ctx context.Context, cfg Config) (*Carrier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Carrier{cfg: cfg, links: map[*Link]struct{}{}}
	if c.publish, err = newKeeper(ctx, &c.cfg, "publish"); err != nil {
		return nil, err
	}
	if c.consume, err = newKeeper(ctx, &c.cfg, "consume"); err != nil {
		c.publish.close()
		return nil, err
	}
	c.cfg.Logger.Info("amqp carrier connected", "url", redactURL(cfg.URL), "name", cfg.Name)
	return c, nil
}

// Link opens one end of stream: the producer end publishes to the stream's
// data queue and consumes its control queue, the consumer end the reverse.
// It declares (or, with Config.Passive, checks) both queues and returns
// once it consumes, so nothing sent afterwards misses it; a failed
// declaration is a *DeclareError. It waits for a connection while the
// carrier is disconnected, until ctx ends.
func (c *Carrier) Link(ctx context.Context, stream string, end delivery.End) (*Link, error) {
	data, control, err := queueNames(&c.cfg, stream)
	if err != nil {
		return nil, err
	}
	var outQueue, inQueue string
	switch end {
	case delivery.ProducerEnd:
		outQueue, inQueue = data, control
	case delivery.ConsumerEnd:
		outQueue, inQueue = control, data
	default:
		return nil, fmt.Errorf("amqp: link for stream %q: unknown end %v", stream, end)
	}
	if c.isClosed() {
		return nil, ErrClosed
	}

	l := &Link{carrier: c, stream: stream, end: end}
	log := c.cfg.Logger.With("stream", stream, "end", end.String())
	// Control frames are soft state: the consumer repeats its requests on a
	// timer, so they need not survive a broker restart, and skipping the
	// disk keeps the window moving.
	l.out = newPublisher(&c.cfg, c.publish, outQueue, end == delivery.ProducerEnd, &l.stats, log)
	l.in = newSubscriber(&c.cfg, c.consume, inQueue, &l.stats, log)

	pubSess, _, err := l.out.open(ctx)
	if err != nil {
		return nil, c.linkError(stream, end, err)
	}
	subSess, _, err := l.in.open(ctx)
	if err != nil {
		_ = pubSess.ch.Close()
		return nil, c.linkError(stream, end, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = pubSess.ch.Close()
		_ = subSess.ch.Close()
		return nil, ErrClosed
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.out.start(l.ctx, pubSess)
	l.in.start(l.ctx, subSess)
	c.links[l] = struct{}{}
	return l, nil
}

// OpenLink is Link, for delivery.Carrier.
func (c *Carrier) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	return linkset.Opened(c.Link(ctx, stream, end))
}

func (c *Carrier) linkError(stream string, end delivery.End, err error) error {
	if c.isClosed() {
		return ErrClosed
	}
	return fmt.Errorf("amqp: link %s end of stream %q: %w", end, stream, err)
}

func (c *Carrier) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Carrier) forget(l *Link) {
	c.mu.Lock()
	delete(c.links, l)
	c.mu.Unlock()
}

// DeleteStream deletes a stream's data and control queues with the frames
// they hold: for retiring a stream, and for tests on a shared broker. Close
// the stream's links first; they would otherwise declare the queues again.
// Queues already gone are not an error. It waits for a connection while the
// carrier is disconnected, until ctx ends.
func (c *Carrier) DeleteStream(ctx context.Context, stream string) error {
	data, control, err := queueNames(&c.cfg, stream)
	if err != nil {
		return err
	}
	if c.isClosed() {
		return ErrClosed
	}
	conn, _, err := c.publish.current(ctx)
	if err != nil {
		return fmt.Errorf("amqp: delete the queues of stream %q: %w", stream, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: delete the queues of stream %q: %w", stream, err)
	}
	defer ch.Close()
	for _, q := range []string{data, control} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("amqp: delete queue %s of stream %q: %w", q, stream, err)
		}
	}
	return nil
}

// Status says whether both connections are open, if not why, and how
// often they were re-established after a loss.
func (c *Carrier) Status() delivery.LinkStatus {
	st := delivery.LinkStatus{Reconnects: c.publish.reconnects.Load() + c.consume.reconnects.Load()}
	pubUp, pubErr := c.publish.status()
	conUp, conErr := c.consume.status()
	switch {
	case c.isClosed():
		st.Err = ErrClosed
	case !pubUp:
		st.Err = fmt.Errorf("amqp: publishing connection: %w", pubErr)
	case !conUp:
		st.Err = fmt.Errorf("amqp: consuming connection: %w", conErr)
	default:
		st.Connected = true
	}
	return st
}

// Close closes every link and both connections, and waits for every
// goroutine the carrier started. It stops the links before it closes the
// connections, and waits for them after, so that a publisher stuck
// writing to a connection the broker blocks (a resource alarm) cannot hold
// it up. Idempotent.
func (c *Carrier) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	links := make([]*Link, 0, len(c.links))
	for l := range c.links {
		links = append(links, l)
	}
	c.mu.Unlock()
	for _, l := range links {
		l.cancel()
	}
	c.publish.close()
	c.consume.close()
	for _, l := range links {
		l.Close()
	}
	return nil
}
