package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bridge-mq/bridge/delivery"
)

// conn is one client connection with the carrier's handlers: it logs
// losses and reconnects, counts slow-consumer drops, and tells its owner
// when it is back or gone for good. nats.go calls the handlers from the
// connection's callback goroutine; they do not block.
type conn struct {
	nc  *natsgo.Conn
	log *slog.Logger

	closing atomic.Bool   // we close it: not a loss
	lost    chan struct{} // closed when the connection is closed for good
	once    sync.Once

	mu sync.Mutex
	up chan struct{} // closed and replaced at each reconnect

	lastErr atomic.Pointer[error] // why it was last disconnected

	slowConsumerEvents atomic.Uint64
	slowConsumerDrops  atomic.Uint64
}

// errDisconnected stands for a disconnect that came without a reason.
var errDisconnected = errors.New("nats: disconnected from the server")

// dial connects to cfg.URL with the carrier's options. name is the
// connection's name on the server.
func dial(ctx context.Context, cfg *Config, name string, log *slog.Logger) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	maxReconnects := cfg.MaxReconnects
	if maxReconnects == 0 {
		maxReconnects = -1 // forever
	}
	c := &conn{log: log, lost: make(chan struct{}), up: make(chan struct{})}
	opts := []natsgo.Option{
		natsgo.Name(name),
		natsgo.Timeout(timeout),
		natsgo.ReconnectWait(cfg.ReconnectWait),
		natsgo.MaxReconnects(maxReconnects),
		natsgo.ReconnectBufSize(cfg.ReconnectBufSize),
		natsgo.DisconnectErrHandler(c.onDisconnect),
		natsgo.ReconnectHandler(c.onReconnect),
		natsgo.ClosedHandler(c.onClosed),
		natsgo.ErrorHandler(c.onAsyncError),
		natsgo.LameDuckModeHandler(func(nc *natsgo.Conn) {
			c.log.Warn("nats: server entering lame duck mode; will reconnect elsewhere", "server", nc.ConnectedUrlRedacted())
		}),
	}
	opts = append(opts, cfg.ClientOptions...)
	nc, err := natsgo.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, &ConnectError{URL: redactURL(cfg.URL), Err: err}
	}
	c.nc = nc
	return c, nil
}

func (c *conn) onDisconnect(nc *natsgo.Conn, err error) {
	if c.closing.Load() {
		return
	}
	if err == nil {
		err = errDisconnected
	}
	c.lastErr.Store(&err)
	c.log.Warn("nats: disconnected; reconnecting", "err", err)
}

func (c *conn) onReconnect(nc *natsgo.Conn) {
	c.log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted(), "reconnects", nc.Stats().Reconnects)
	c.mu.Lock()
	close(c.up)
	c.up = make(chan struct{})
	c.mu.Unlock()
}

func (c *conn) onClosed(nc *natsgo.Conn) {
	if !c.closing.Load() {
		err := fmt.Errorf("%w: %v", ErrConnectionLost, nc.LastError())
		c.lastErr.Store(&err)
		c.log.Error("nats: connection closed for good; its links fail", "err", nc.LastError())
	}
	c.once.Do(func() { close(c.lost) })
}

func (c *conn) onAsyncError(nc *natsgo.Conn, sub *natsgo.Subscription, err error) {
	if errors.Is(err, natsgo.ErrSlowConsumer) && sub != nil {
		// nats.go reports a slow consumer once per episode; what it dropped
		// is counted on the subscription.
		dropped, _ := sub.Dropped()
		c.slowConsumerEvents.Add(1)
		c.slowConsumerDrops.Store(uint64(max(dropped, 0)))
		c.log.Warn("nats: slow consumer: frames dropped because Receive fell behind; the protocol resends them",
			"subject", sub.Subject, "dropped_total", dropped)
		return
	}
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	c.log.Warn("nats: asynchronous error", "subject", subject, "err", err)
}

// status reports the connection for a LinkStatus.
func (c *conn) status() delivery.LinkStatus {
	st := delivery.LinkStatus{Connected: c.nc.IsConnected(), Reconnects: c.nc.Stats().Reconnects}
	if !st.Connected {
		switch p := c.lastErr.Load(); {
		case c.closing.Load():
			st.Err = delivery.ErrLinkClosed
		case p != nil:
			st.Err = *p
		default:
			st.Err = errDisconnected
		}
	}
	return st
}

// reconnected returns a channel closed at the next reconnect.
func (c *conn) reconnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// waitConnected returns once the connection is up, or false when stop or
// the connection's loss comes first.
func (c *conn) waitConnected(stop <-chan struct{}) bool {
	for {
		next := c.reconnected()
		if c.nc.IsConnected() {
			return true
		}
		select {
		case <-next:
		case <-stop:
			return false
		case <-c.lost:
			return false
		}
	}
}

// close flushes what is buffered (acks, naks) for up to timeout, then
// closes the connection.
func (c *conn) close(timeout time.Duration) {
	c.closing.Store(true)
	if c.nc.IsConnected() {
		_ = c.nc.FlushTimeout(timeout)
	}
	c.nc.Close()
}

// isLost reports whether the connection is closed for good.
func (c *conn) isLost() bool {
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}
