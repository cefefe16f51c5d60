package tcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/bridge-mq/bridge/delivery"
)

// Link is one end of a stream over TCP: a delivery.Link. It outlives its
// connections: when one is lost, the dialing side connects again and the
// listening side takes the next one the peer makes, and Send and Receive
// carry on with it.
//
// Send queues the frame on the current connection and returns; while there
// is no connection it waits for one (until ctx ends), so frames are not
// thrown away during a short outage. Frames queued on a connection that
// breaks are lost; the protocol resends them.
//
// A dialing link runs one goroutine that dials, and every connection a
// reader and a writer; Close stops them and waits. The Listener or Carrier
// that made a link closes it when it closes.
type Link struct {
	stream string
	end    delivery.End
	cfg    Config
	log    *slog.Logger
	in     chan []byte

	mu      sync.Mutex
	cur     *conn
	changed chan struct{} // closed and replaced when cur changes
	closed  bool

	life       context.Context // ends at Close
	stop       context.CancelFunc
	closeOnce  sync.Once
	wg         sync.WaitGroup // the dial loop and the connections' goroutines
	onClose    []func()       // the listener and the carrier forget the link
	connects   atomic.Uint64
	reconnects atomic.Uint64
	lastErr    atomic.Pointer[error] // why the last connection ended or attempt failed
	warnDial   throttle              // "cannot connect"
	warnLost   throttle              // "connection lost"
}

var (
	_ delivery.Link             = (*Link)(nil)
	_ delivery.FrameSizeLimiter = (*Link)(nil)
	_ delivery.StatusReporter   = (*Link)(nil)
)

func newLink(stream string, end delivery.End, cfg Config) *Link {
	life, stop := context.WithCancel(context.Background())
	return &Link{
		stream:  stream,
		end:     end,
		cfg:     cfg,
		log:     cfg.Logger.With("carrier", "tcp", "stream", stream, "end", end.String()),
		in:      make(chan []byte, 64),
		changed: make(chan struct{}),
		life:    life,
		stop:    stop,
	}
}

// Stream returns the stream's name.
func (l *Link) Stream() string { return l.stream }

// End returns the end of the stream the link serves.
func (l *Link) End() delivery.End { return l.end }

// Send queues frame for the other end. It returns a
// *delivery.FrameTooLargeError for a frame over MaxFrameSize (the frame is
// not sent; the link is fine), ctx's error if ctx ends while it waits for
// a connection or for room to write, and an error wrapping
// delivery.ErrLinkClosed after Close.
func (l *Link) Send(ctx context.Context, frame []byte) error {
	if len(frame) > l.cfg.MaxFrameSize {
		return &delivery.FrameTooLargeError{Carrier: "tcp", Size: len(frame), Limit: l.cfg.MaxFrameSize}
	}
	for {
		l.mu.Lock()
		c, changed, closed := l.cur, l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return fmt.Errorf("tcp: send on stream %q: %w", l.stream, delivery.ErrLinkClosed)
		}
		if c == nil {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			case <-l.life.Done():
				continue
			}
		}
		if err := c.enqueue(ctx, frame); err != errConnDone {
			return err
		}
	}
}

// Receive returns the next frame from the other end, from whichever
// connection is current, waiting for one.
func (l *Link) Receive(ctx context.Context) (delivery.Frame, error) {
	select {
	case data := <-l.in:
		return delivery.Frame{Data: data}, nil
	case <-ctx.Done():
		return delivery.Frame{}, ctx.Err()
	case <-l.life.Done():
		return delivery.Frame{}, fmt.Errorf("tcp: receive on stream %q: %w", l.stream, delivery.ErrLinkClosed)
	}
}

// MaxFrameSize reports the frame limit, so the protocol keeps under it.
func (l *Link) MaxFrameSize() int { return l.cfg.MaxFrameSize }

// Status reports whether a connection is up and how often one was made
// again after a loss.
func (l *Link) Status() delivery.LinkStatus {
	l.mu.Lock()
	connected := l.cur != nil
	l.mu.Unlock()
	st := delivery.LinkStatus{Connected: connected, Reconnects: l.reconnects.Load()}
	if p := l.lastErr.Load(); p != nil && !connected {
		st.Err = *p
	}
	return st
}

// install makes c the link's connection, replacing (and closing) the one
// before, and starts its goroutines. It reports false, having closed c, if
// the link is closed.
func (l *Link) install(c *conn) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.nc.Close()
		return false
	}
	old := l.cur
	l.cur = c
	close(l.changed)
	l.changed = make(chan struct{})
	c.start(&l.wg)
	l.mu.Unlock()
	if l.connects.Add(1) > 1 {
		l.reconnects.Add(1)
	}
	if old != nil {
		old.fail(fmt.Errorf("tcp: replaced by a new connection from the peer"))
	}
	l.log.Info("connected", "remote", c.nc.RemoteAddr().String(), "connections", l.connects.Load())
	return true
}

// connEnded forgets a connection that failed.
func (l *Link) connEnded(c *conn, err error) {
	l.mu.Lock()
	current := l.cur == c
	if current {
		l.cur = nil
		close(l.changed)
		l.changed = make(chan struct{})
	}
	closed := l.closed
	l.mu.Unlock()
	if current && !closed {
		l.setErr(err)
		if errors.Is(err, io.EOF) {
			l.log.Info("the peer closed the connection", "err", err) // it stopped, or restarts
		} else {
			l.warnLost.warn(l.log, "connection lost", "err", err, "reconnects", l.reconnects.Load()) // a peer sending garbage, say: not one line each
		}
	}
}

func (l *Link) setErr(err error) {
	l.lastErr.Store(&err)
}

// Close closes the connection, stops reconnecting and waits for the link's
// goroutines. Frames received and not yet taken are dropped. Idempotent.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.stop()
		l.mu.Lock()
		l.closed = true
		c := l.cur
		l.mu.Unlock()
		if c != nil {
			c.fail(delivery.ErrLinkClosed)
		}
		l.wg.Wait()
		for _, forget := range l.onClose {
			forget()
		}
	})
	return nil
}
