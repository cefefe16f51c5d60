package bridge

import (
	stdlog "log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// throttleEvery is how often, at most, a warning a peer can cause is
// logged: a peer must not be able to flood the log. Metrics count every
// occurrence.
const throttleEvery = 10 * time.Second

// throttle runs a log call at most once per throttleEvery, and tells it how
// many it held back since the last. Safe for concurrent use.
type throttle struct {
	once rate.Sometimes
	held atomic.Int64
}

func newThrottle() *throttle { return &throttle{once: rate.Sometimes{Interval: throttleEvery}} }

func (t *throttle) do(logIt func(held int)) {
	ran := false
	t.once.Do(func() {
		ran = true
		logIt(int(t.held.Swap(0)))
	})
	if !ran {
		t.held.Add(1)
	}
}

// peerErrorLog is the HTTP server's error log: what its clients did wrong
// (a broken request, a failed TLS handshake), as warnings, at most one per
// throttleEvery.
func peerErrorLog(log *slog.Logger) *stdlog.Logger {
	t := newThrottle()
	return stdlog.New(writerFunc(func(p []byte) (int, error) {
		t.do(func(held int) { log.Warn("http server: "+strings.TrimSpace(string(p)), "held_back", held) })
		return len(p), nil
	}), "", 0)
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// limitListener accepts at most n connections open at once: Accept waits
// while n are, and the rest wait in the listen queue.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back once closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
