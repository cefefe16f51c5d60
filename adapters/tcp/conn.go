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
// pings when the connection has been quiet for Keepalive. A frame of
// directFrameMin or more that finds nothing queued is written by its Send
// itself, without a copy. Whichever fails first ends the connection; ended
// tells the link.
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
	writing bool   // the writer, or a Send writing its frame itself, has the connection
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

// directFrameMin is the smallest frame a Send writes itself when nothing
// is queued before it: copying a frame this large into the queue costs more
// than the system call that gathering frames saves. The protocol's frames
// of large messages are this large (a megabyte by default).
const directFrameMin = 256 << 10

// enqueue frames payload for the writer, waiting while WriteBuffer is full,
// or writes a large frame itself.
func (c *conn) enqueue(ctx context.Context, payload []byte) error {
	for {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return errConnDone
		}
		if len(payload) >= directFrameMin && len(c.pending) == 0 && !c.writing {
			c.writing = true
			c.mu.Unlock()
			err := c.writeFrame(ctx, payload)
			c.released(nil)
			if err != nil {
				c.fail(fmt.Errorf("tcp: write: %w", err))
				return errConnDone
			}
			return nil
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

// writeFrame writes one frame of payload on the connection, which the
// caller has (c.writing), the header and payload gathered in one system
// call. ctx ending mid-frame ends the connection: the peer would wait for
// the rest of a frame.
func (c *conn) writeFrame(ctx context.Context, payload []byte) error {
	var hdr [frameHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(1+len(payload)))
	hdr[4] = typeFrame
	var mu sync.Mutex
	finished := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			c.nc.SetWriteDeadline(time.Unix(1, 0)) // now: the write returns
		}
	})
	defer stop()
	c.nc.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
	bufs := net.Buffers{hdr[:], payload}
	_, err := bufs.WriteTo(c.nc)
	mu.Lock()
	finished = true
	mu.Unlock()
	return err
}

// take gives the writer the connection (c.writing) and swaps the pending
// bytes out for it, letting waiting senders in: ok false while a Send
// writes its frame itself, or when nothing is pending (unless ping: the
// writer then has the connection for a ping, buf empty).
func (c *conn) take(ping bool) (buf []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing || (len(c.pending) == 0 && !ping) {
		return nil, false
	}
	c.writing = true
	if len(c.pending) == 0 {
		return nil, true // a ping
	}
	buf = c.pending
	c.pending, c.spare = c.spare[:0], nil
	if c.waiting {
		c.waiting = false
		close(c.room)
		c.room = make(chan struct{})
	}
	return buf, true
}

// released gives the connection back after a write, keeping spare (the
// writer's buffer, written) for reuse, and wakes the writer for what was
// queued meanwhile.
func (c *conn) released(spare []byte) {
	c.mu.Lock()
	c.writing = false
	if spare != nil {
		c.spare = spare[:0]
	}
	queued := len(c.pending) > 0
	c.mu.Unlock()
	if queued {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
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
		buf, ok := c.take(pinging)
		if !ok {
			if pinging {
				keepalive.Reset(c.cfg.Keepalive) // a Send is writing: not quiet
			}
			continue
		}
		written := buf
		if len(buf) == 0 {
			buf, written = ping, nil
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
		if _, err := c.nc.Write(buf); err != nil {
			c.fail(fmt.Errorf("tcp: write: %w", err))
			return
		}
		c.released(written)
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
