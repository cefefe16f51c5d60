package tcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// After the handshake each frame is a 4-byte big-endian length, then a type
// byte and the payload; the length counts both.
const (
	frameHeaderLen = 5
	typeFrame      = 0
	typePing       = 1
	maxFrameLimit  = 1 << 30
)

// errConnDone says the connection a Send was queued on has ended; the link
// waits for the next one.
var errConnDone = errors.New("tcp: connection ended")

// conn is one established, authenticated connection of a link. It runs two
// goroutines: a reader, which hands frames to the link, and a writer, which
// writes everything Send queued since its last write in one syscall and
// pings when the connection has been quiet for Keepalive. Whichever fails
// first ends the connection; ended tells the link.
type conn struct {
	nc    net.Conn
	br    *bufio.Reader
	cfg   Config
	in    chan<- []byte
	ended func(*conn, error)

	mu      sync.Mutex
	pending []byte // framed bytes waiting for the writer
	spare   []byte // the writer's last buffer, reused
	waiting bool   // a Send waits for room
	room    chan struct{}
	wake    chan struct{}

	done chan struct{}
	once sync.Once
	err  error // why the connection ended; set before done is closed
}

// readBuffer is the size of a connection's read buffer.
const readBuffer = 64 << 10

// newConn makes the conn of an authenticated connection, and only now its
// buffers: a connection in its handshake has none (see Listener).
func newConn(nc net.Conn, cfg Config, in chan<- []byte, ended func(*conn, error)) *conn {
	return &conn{
		nc: nc, br: bufio.NewReaderSize(nc, readBuffer), cfg: cfg, in: in, ended: ended,
		room: make(chan struct{}),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

// start runs the reader and the writer, counted in wg.
func (c *conn) start(wg *sync.WaitGroup) {
	wg.Add(2)
	go func() { defer wg.Done(); c.read() }()
	go func() { defer wg.Done(); c.write() }()
}

// fail ends the connection once, with the first reason given.
func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		c.nc.Close()
		c.ended(c, err)
	})
}

// enqueue frames payload for the writer, waiting while WriteBuffer is full.
func (c *conn) enqueue(ctx context.Context, payload []byte) error {
	for {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return errConnDone
		}
		if len(c.pending) == 0 || len(c.pending)+frameHeaderLen+len(payload) <= c.cfg.WriteBuffer {
			wasEmpty := len(c.pending) == 0
			c.pending = appendFrame(c.pending, typeFrame, payload)
			c.mu.Unlock()
			if wasEmpty {
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
			return nil
		}
		c.waiting = true
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-c.done:
			return errConnDone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func appendFrame(dst []byte, typ byte, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+len(payload)))
	dst = append(dst, typ)
	return append(dst, payload...)
}

// take swaps the pending bytes out for the writer and lets waiting senders
// in.
func (c *conn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := c.pending
	c.pending, c.spare = c.spare[:0], nil
	if c.waiting {
		c.waiting = false
		close(c.room)
		c.room = make(chan struct{})
	}
	return buf
}

func (c *conn) write() {
	ping := appendFrame(nil, typePing, nil)
	keepalive := time.NewTimer(c.cfg.Keepalive)
	defer keepalive.Stop()
	for {
		pinging := false
		select {
		case <-c.wake:
		case <-keepalive.C:
			pinging = true
		case <-c.done:
			return
		}
		buf := c.take()
		if len(buf) == 0 {
			if !pinging {
				continue
			}
			buf = ping
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
		if _, err := c.nc.Write(buf); err != nil {
			c.fail(fmt.Errorf("tcp: write: %w", err))
			return
		}
		if !pinging {
			c.mu.Lock()
			c.spare = buf[:0]
			c.mu.Unlock()
		}
		keepalive.Reset(c.cfg.Keepalive)
	}
}

func (c *conn) read() {
	var hdr [frameHeaderLen]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			c.fail(readError(err, c.cfg.IdleTimeout))
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n == 0 || n-1 > uint32(c.cfg.MaxFrameSize) {
			c.fail(fmt.Errorf("tcp: peer sent a frame of %d bytes; the limit is %d (MaxFrameSize)", int64(n)-1, c.cfg.MaxFrameSize))
			return
		}
		size := int(n - 1)
		switch hdr[4] {
		case typePing:
			if size != 0 {
				c.fail(fmt.Errorf("tcp: peer sent a ping with %d bytes", size))
				return
			}
		case typeFrame:
			data := make([]byte, size)
			if _, err := io.ReadFull(c.br, data); err != nil {
				c.fail(readError(err, c.cfg.IdleTimeout))
				return
			}
			select {
			case c.in <- data:
			case <-c.done:
				return
			}
		default:
			c.fail(fmt.Errorf("tcp: peer sent unknown frame type %d", hdr[4]))
			return
		}
	}
}

func readError(err error, idle time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("tcp: peer silent for %v (IdleTimeout): %w", idle, err)
	}
	return fmt.Errorf("tcp: read: %w", err)
}
