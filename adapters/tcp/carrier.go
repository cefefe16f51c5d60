package tcp

import (
	"context"
	"net"
	"sync"

	"github.com/bridge-mq/bridge/adapters/internal/linkset"
	"github.com/bridge-mq/bridge/delivery"
)

// Carrier is the tcp carrier as a delivery.Carrier: the end of every stream
// named by its listenEnd is served by a Listener on addr, and the other end
// dials addr. A process that runs one end makes a Carrier with the same
// addr and listenEnd as its peer's; the links of its own end either listen
// or dial, as that end dictates.
//
// A process that runs both ends (the demo, the bench) makes one Carrier:
// its dialing links dial its own listener, at the listener's real address.
// Give it an addr with port 0 and the listener takes a free port; such an
// address can only be reached through this Carrier, so a Link of the
// dialing end starts the listener first if no link of the listening end
// has yet.
//
// The Carrier starts no goroutine itself: its Listener and its links run
// theirs (see Listener and Link). Close closes every link it made, then its
// listener.
type Carrier struct {
	addr      string
	listenEnd delivery.End
	cfg       Config
	ephemeral bool // addr's port is 0: only this carrier's listener is there

	mu     sync.Mutex // held through Link, so that Close waits for one in progress
	ln     *Listener  // started by the first Link that needs it
	closed bool

	links linkset.Set[*Link]
}

var (
	_ delivery.Carrier        = (*Carrier)(nil)
	_ delivery.StatusReporter = (*Carrier)(nil)
)

// New returns a carrier whose listenEnd ends listen on addr (host:port) and
// whose other ends dial it. It checks addr, listenEnd and cfg (a bad field
// is a *ConfigError) and does no I/O: the listener starts with the first
// Link that needs it.
//
// One cfg serves both sides, as one tls.Config does in crypto/tls: the
// listener uses cfg.TLS's Certificates, ClientAuth and ClientCAs, the
// dialing links its RootCAs, and its Certificates as their client
// certificate. A carrier that only dials needs no certificate of its own
// (unless the listener asks for one).
func New(addr string, listenEnd delivery.End, cfg Config) (*Carrier, error) {
	if err := checkAddr("carrier", addr); err != nil {
		return nil, err
	}
	if err := checkEnd("carrier: listening end", listenEnd); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return &Carrier{
		addr:      addr,
		listenEnd: listenEnd,
		cfg:       cfg,
		ephemeral: port == "0" || port == "",
		links:     linkset.Set[*Link]{Carrier: "tcp"},
	}, nil
}

// Link opens the end of stream named by end. The listening end is a link
// of the carrier's Listener (see Listener.Link; the listener starts here
// the first time, and a Listen error is this call's); the other end dials
// (see Dial) the listener's address when this carrier listens, else addr.
// Both return at once, and the link connects in the background: the
// listening end once its peer dials in, the dialing end by dialing until it
// gets through. ctx bounds the listener's start.
func (c *Carrier) Link(ctx context.Context, stream string, end delivery.End) (*Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkEnd("link", end); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.ln == nil && (end == c.listenEnd || c.ephemeral) {
		ln, err := Listen(ctx, c.addr, c.cfg)
		if err != nil {
			return nil, err
		}
		c.ln = ln
	}
	var l *Link
	var err error
	if end == c.listenEnd {
		l, err = c.ln.Link(stream, end)
	} else {
		l, err = Dial(ctx, c.addrLocked(), stream, end, c.cfg)
	}
	if err != nil {
		return nil, err
	}
	c.links.Add(l) // not closed: Close waits for c.mu
	l.onClose = append(l.onClose, func() { c.links.Remove(l) })
	return l, nil
}

// OpenLink is Link, for delivery.Carrier.
func (c *Carrier) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	return linkset.Opened(c.Link(ctx, stream, end))
}

// Addr is the address the dialing links dial: the listener's, once this
// carrier listens (with the port it picked, if addr's was 0), else addr.
func (c *Carrier) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrLocked()
}

func (c *Carrier) addrLocked() string {
	if c.ln != nil {
		return c.ln.Addr().String()
	}
	return c.addr
}

// Status sums the carrier's links, as the carrier has no connection of its
// own: connected while every open link is (so also while none is open), the
// reconnects of every link it made, closed ones included, and while a link
// is down, why. After Close it reports ErrClosed.
func (c *Carrier) Status() delivery.LinkStatus { return c.links.Status(ErrClosed) }

// ListenerStats returns the counts of the carrier's listener (see
// Listener.Stats); all zero while it has none.
func (c *Carrier) ListenerStats() ListenerStats {
	c.mu.Lock()
	ln := c.ln
	c.mu.Unlock()
	if ln == nil {
		return ListenerStats{}
	}
	return ln.Stats()
}

// Close closes every link the carrier made and its listener, and waits for
// their goroutines. Idempotent.
func (c *Carrier) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ln := c.ln
	c.mu.Unlock()
	for _, l := range c.links.Close() {
		l.Close()
	}
	if ln != nil {
		return ln.Close()
	}
	return nil
}
