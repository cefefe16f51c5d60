package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// connTracker opens a link's network connections, for kafka-go's Transport
// and Dialer (which add TLS and SASL on top), and watches them. A dial that
// fails, or a connection the broker closed or reset, marks the link
// disconnected; the first bytes read from the broker afterwards mark it
// connected again and count a reconnect. kafka-go reconnects by itself; the
// tracker is how the link sees it.
//
// A broker going away breaks every connection, some noticed only when next
// used; each connection remembers the loss count it was opened under, so one
// outage counts once however many connections report it.
type connTracker struct {
	dialer net.Dialer
	log    *slog.Logger

	down       atomic.Bool // fast path for Read; written under mu
	reconnects atomic.Uint64

	mu        sync.Mutex
	lastErr   error  // the failure that marked the link down
	losses    uint64 // outages seen; a connection opened under an older count reports an outage already counted
	conns     map[*trackedConn]struct{}
	closed    bool // no more dials
	noReaders bool // no more dials for the Reader
}

func newConnTracker(dialTimeout time.Duration, log *slog.Logger) *connTracker {
	return &connTracker{
		dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		log:    log,
		conns:  map[*trackedConn]struct{}{},
	}
}

// errTrackerClosed is returned by dial once the link is closed.
var errTrackerClosed = errors.New("kafka: link closed")

// errCut is the loss recorded by cut.
var errCut = errors.New("connections cut")

// errNoLeader is what dial returns for the address kafka-go dials when the
// cluster's metadata names no leader for a partition: broker -1, which it
// has no address for, so ":0". A Kafka in a controlled shutdown answers so
// for the partitions it led until it stops (as does a cluster electing a
// new leader); kafka-go asks again after its backoff.
var errNoLeader = errors.New("the cluster's metadata names no leader for the partition (its broker is shutting down, or a new one is being elected)")

// dialFunc returns the dial function given to kafka-go: for the link's
// Reader (reader true), whose connections closeReaders closes, or for its
// Transport.
func (t *connTracker) dialFunc(reader bool) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		return t.dial(ctx, network, address, reader)
	}
}

func (t *connTracker) dial(ctx context.Context, network, address string, reader bool) (net.Conn, error) {
	t.mu.Lock()
	closed, losses := t.closed || reader && t.noReaders, t.losses
	t.mu.Unlock()
	if closed {
		return nil, errTrackerClosed
	}
	if _, port, err := net.SplitHostPort(address); err == nil && port == "0" {
		t.lost(losses, "(no leader)", errNoLeader)
		return nil, errNoLeader
	}
	c, err := t.dialer.DialContext(ctx, network, address)
	if err != nil {
		if ctx.Err() == nil {
			t.lost(losses, address, err)
		}
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || reader && t.noReaders {
		c.Close()
		return nil, errTrackerClosed
	}
	// Opened now: an outage counted while it was being dialled is behind it.
	tc := &trackedConn{Conn: c, t: t, addr: address, losses: t.losses, reader: reader}
	t.conns[tc] = struct{}{}
	return tc, nil
}

// lost records a failure seen on a connection opened (or a dial started)
// when losses outages had been counted.
func (t *connTracker) lost(losses uint64, addr string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || losses < t.losses || t.down.Load() {
		return // this outage is known already
	}
	t.losses++
	t.down.Store(true)
	t.lastErr = fmt.Errorf("kafka: broker %s: %w", addr, err)
	t.log.Warn("kafka: lost the connection to a broker; kafka-go reconnects", "broker", addr, "err", err)
}

// alive records bytes read from a broker on a connection opened when losses
// outages had been counted: one opened since the last outage proves the link
// reconnected.
func (t *connTracker) alive(losses uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.down.Load() || losses < t.losses {
		return
	}
	t.down.Store(false)
	n := t.reconnects.Add(1)
	t.log.Info("kafka: reconnected to a broker", "broker", addr, "reconnects", n)
}

// status reports the connections as a link's status.
func (t *connTracker) status() delivery.LinkStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := delivery.LinkStatus{Connected: !t.down.Load(), Reconnects: t.reconnects.Load()}
	if !st.Connected {
		st.Err = t.lastErr
	}
	return st
}

// cut closes every open connection, as a network failure would.
func (t *connTracker) cut() {
	t.mu.Lock()
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
		delete(t.conns, c)
	}
	losses := t.losses
	t.mu.Unlock()
	t.lost(losses, "all", errCut)
	for _, c := range conns {
		c.Conn.Close()
	}
}

// closeReaders closes the Reader's connections, which a fetch may be
// waiting on for up to FetchMaxWait, and refuses it new ones: the Reader
// then stops at once.
func (t *connTracker) closeReaders() {
	t.mu.Lock()
	t.noReaders = true
	t.mu.Unlock()
	t.closeWhere(func(c *trackedConn) bool { return c.reader })
}

// close refuses further dials and closes what kafka-go left open.
func (t *connTracker) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.closeWhere(func(*trackedConn) bool { return true })
}

func (t *connTracker) closeWhere(which func(*trackedConn) bool) {
	t.mu.Lock()
	var conns []*trackedConn
	for c := range t.conns {
		if which(c) {
			conns = append(conns, c)
			delete(t.conns, c)
		}
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.local.Store(true)
		c.Conn.Close()
	}
}

func (t *connTracker) forget(c *trackedConn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// trackedConn reports its failures to its tracker.
type trackedConn struct {
	net.Conn
	t      *connTracker
	addr   string
	losses uint64      // the tracker's loss count when this connection opened
	reader bool        // opened for the Reader
	local  atomic.Bool // closed by kafka-go or the tracker: later errors are ours
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.t.down.Load() {
		c.t.alive(c.losses, c.addr)
	}
	if err != nil {
		c.failed(err)
	}
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.failed(err)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.local.Store(true)
	c.t.forget(c)
	return c.Conn.Close()
}

func (c *trackedConn) failed(err error) {
	if c.local.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
		return // kafka-go's own deadline or close
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return
	}
	c.t.lost(c.losses, c.addr, err)
}
