package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Listener accepts connections for many streams on one address. Each stream
// served here has a Link (see Listener.Link); a peer dials in naming the
// stream and its own end, and once the handshake succeeds the connection
// becomes that link's, replacing any it had. A connection that fails the
// handshake (garbage, a wrong secret, an unknown stream, no client
// certificate when TLS asks for one, silence past HandshakeTimeout) is
// closed before any frame is read, and other streams are not disturbed.
//
// The handshake authenticates the connection: with Config.Secret, only a
// dialer that proves it holds the secret gets a connection, and it proves
// it before the listener sends anything derived from the secret (see the
// package documentation). It does not seal the frames that follow: on a
// plain connection they can be read, and by someone on the path changed;
// TLS protects the connection, and the delivery package seals frames end
// to end above any carrier.
//
// A connection costs little until it is authenticated: a goroutine and a
// few hundred bytes of handshake state. Its frame buffers are allocated
// only once the handshake succeeds. At most Config.MaxHandshakes
// connections are in their handshake at once, and at most
// Config.MaxHandshakesPerHost from one source address; one over either cap
// is closed as soon as it is accepted, with no goroutine of its own, and
// counted (Stats). Warnings about peers (refused, over a cap, garbage) are
// logged at most once per 10 s of each kind, with how many were held back.
//
// The listener starts one goroutine that accepts, and one per connection
// in its handshake.
type Listener struct {
	ln  net.Listener
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	links  map[string]*Link
	closed bool
	// The connections in their handshake, with their source address, and
	// how many each address has in: within MaxHandshakes and
	// MaxHandshakesPerHost. Close closes them.
	shaking map[net.Conn]netip.Addr
	hosts   map[netip.Addr]int
	stats   ListenerStats // all but Handshaking, which is len(shaking)

	warns [numFaults]throttle

	wg sync.WaitGroup
}

// ListenerStats counts what a Listener did with the connections it
// accepted. Every accepted connection is in Handshaking until it ends in
// exactly one of the other counts, so Accepted is their sum.
type ListenerStats struct {
	// Accepted counts the connections accepted on the socket.
	Accepted uint64
	// Handshaking is the number in their handshake now.
	Handshaking int
	// Connected counts the handshakes that succeeded: the connection went
	// to its stream's link.
	Connected uint64
	// Refused counts the peers that spoke the handshake and were refused,
	// and told why: a handshake version this listener does not speak, a
	// wrong secret, an unknown stream, the same end as the link's.
	Refused uint64
	// Failed counts the connections closed without an answer: not a
	// handshake (garbage), cut short, or silent past HandshakeTimeout.
	Failed uint64
	// TLSFailed counts the connections whose TLS handshake failed (no or a
	// bad client certificate, say).
	TLSFailed uint64
	// OverCap counts the connections closed at once because
	// MaxHandshakes connections were in their handshake.
	OverCap uint64
	// OverHostCap counts the connections closed at once because
	// MaxHandshakesPerHost connections from the same source address were
	// in their handshake.
	OverHostCap uint64
}

// peerFault is a kind of trouble a peer causes the listener: each is
// counted in ListenerStats and warned of through a throttle of its own.
type peerFault int

const (
	faultOverCap peerFault = iota
	faultOverHostCap
	faultTLS
	faultGarbage
	faultRefused
	numFaults
)

// faults says, for each peerFault, what its warning says, the name of its
// count there, and where ListenerStats keeps that count.
var faults = [numFaults]struct {
	msg, count string
	counter    func(*ListenerStats) *uint64
}{
	faultOverCap: {"closed a connection at once: MaxHandshakes connections are in their handshake",
		"over_cap", func(st *ListenerStats) *uint64 { return &st.OverCap }},
	faultOverHostCap: {"closed a connection at once: its address has MaxHandshakesPerHost connections in their handshake",
		"over_host_cap", func(st *ListenerStats) *uint64 { return &st.OverHostCap }},
	faultTLS: {"refused a connection: TLS handshake failed",
		"tls_failed", func(st *ListenerStats) *uint64 { return &st.TLSFailed }},
	faultGarbage: {"dropped a connection that did not complete the handshake",
		"failed", func(st *ListenerStats) *uint64 { return &st.Failed }},
	faultRefused: {"refused a connection",
		"refused", func(st *ListenerStats) *uint64 { return &st.Refused }},
}

// countLocked counts one fault and returns its count so far; l.mu is held.
func (l *Listener) countLocked(f peerFault) uint64 {
	n := faults[f].counter(&l.stats)
	*n++
	return *n
}

// warn logs a fault of a peer at remote (at most one per warnInterval of
// its kind), with its count so far and args.
func (l *Listener) warn(f peerFault, remote net.Addr, count uint64, args ...any) {
	args = append([]any{"remote", remote.String()}, args...)
	l.warns[f].warn(l.log, faults[f].msg, append(args, faults[f].count, count)...)
}

// Listen listens on addr (host:port; port 0 picks a free one). With
// Config.TLS it serves TLS with the config's Certificates (or
// GetCertificate), ClientAuth and ClientCAs; one without a certificate is a
// *ConfigError, since every handshake would fail.
func Listen(ctx context.Context, addr string, cfg Config) (*Listener, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if t := cfg.TLS; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return nil, &ConfigError{Field: "TLS", Value: "(no certificate)", Reason: "the listening side needs Certificates or GetCertificate to serve TLS"}
	}
	ln, err := (&net.ListenConfig{KeepAlive: cfg.IdleTimeout}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen on %s: %w", addr, err)
	}
	l := &Listener{
		ln: ln, cfg: cfg, log: cfg.Logger.With("carrier", "tcp", "listen", ln.Addr().String()),
		links:   map[string]*Link{},
		shaking: map[net.Conn]netip.Addr{},
		hosts:   map[netip.Addr]int{},
	}
	l.log.Info("listening", "addr", ln.Addr().String(), "tls", onOff(cfg.TLS != nil),
		"max_handshakes", cfg.MaxHandshakes, "max_handshakes_per_host", cfg.MaxHandshakesPerHost)
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// Addr returns the address the listener listens on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stats returns the listener's counts of the connections it accepted.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Handshaking = len(l.shaking)
	return st
}

// Link returns the link for one end of stream on this listener; the other
// end dials in. It fails with ErrStreamInUse while an earlier link of the
// stream is open, and with ErrClosed after Close.
func (l *Listener) Link(stream string, end delivery.End) (*Link, error) {
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	if err := checkEnd("link", end); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if _, ok := l.links[stream]; ok {
		return nil, fmt.Errorf("%w: %q", ErrStreamInUse, stream)
	}
	link := newLink(stream, end, l.cfg)
	link.onClose = append(link.onClose, func() {
		l.mu.Lock()
		if l.links[stream] == link {
			delete(l.links, stream)
		}
		l.mu.Unlock()
	})
	l.links[stream] = link
	return link, nil
}

// Close stops accepting, closes the connections in their handshake and
// every link made by Link, and waits for the listener's goroutines.
// Idempotent.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	links := make([]*Link, 0, len(l.links))
	for _, link := range l.links {
		links = append(links, link)
	}
	for nc := range l.shaking {
		nc.Close() // its handshake fails at once, and its goroutine ends
	}
	l.mu.Unlock()
	err := l.ln.Close()
	for _, link := range links {
		link.Close()
	}
	l.wg.Wait()
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // out of file descriptors, say: do not spin
			continue
		}
		if !l.admit(nc) {
			nc.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(nc)
		}()
	}
}

// admit counts an accepted connection and takes it into its handshake, or
// reports false (and warns) when a cap is reached or the listener closed.
func (l *Listener) admit(nc net.Conn) bool {
	host := hostKey(nc.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Accepted++
	switch {
	case l.closed:
		l.countLocked(faultGarbage)
		return false
	case l.hosts[host] >= l.cfg.MaxHandshakesPerHost:
		l.warn(faultOverHostCap, nc.RemoteAddr(), l.countLocked(faultOverHostCap), "max_handshakes_per_host", l.cfg.MaxHandshakesPerHost)
		return false
	case len(l.shaking) >= l.cfg.MaxHandshakes:
		l.warn(faultOverCap, nc.RemoteAddr(), l.countLocked(faultOverCap), "max_handshakes", l.cfg.MaxHandshakes)
		return false
	}
	l.shaking[nc] = host
	l.hosts[host]++
	return true
}

// hostKey is the source address a connection counts against in
// MaxHandshakesPerHost: its IP, or for IPv6 its /64, which one host
// usually holds whole.
func hostKey(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ta.AddrPort().Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// serve authenticates one admitted connection and hands it to its link.
func (l *Listener) serve(raw net.Conn) {
	nc, h, link, err := l.handshake(raw)
	fault, args := faultGarbage, []any{"err", err}
	var tlsErr *tlsError
	switch {
	case errors.As(err, &tlsErr):
		fault, args = faultTLS, []any{"err", tlsErr.err}
	case errors.Is(err, ErrRefused):
		fault, args = faultRefused, []any{"stream", h.stream, "err", err}
	}
	l.mu.Lock()
	host := l.shaking[raw]
	delete(l.shaking, raw)
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
	if err == nil {
		l.stats.Connected++
		l.mu.Unlock()
		link.install(newConn(nc, l.cfg, link.in, link.connEnded))
		return
	}
	count, closed := l.countLocked(fault), l.closed
	l.mu.Unlock()
	raw.Close()
	if !closed { // else Close cut its handshake: not the peer's doing
		l.warn(fault, raw.RemoteAddr(), count, args...)
	}
}

// tlsError marks a failed TLS handshake.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// handshake runs TLS, if configured, and the handshake on raw within
// HandshakeTimeout, reading exact lengths into small buffers: nothing is
// buffered ahead, so the connection that it returns (raw, or TLS over it)
// starts at the first frame.
func (l *Listener) handshake(raw net.Conn) (net.Conn, hello, *Link, error) {
	nc := raw
	nc.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	if l.cfg.TLS != nil {
		tc := tls.Server(nc, l.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, hello{}, nil, &tlsError{err}
		}
		nc = tc
	}
	var link *Link
	h, err := listenHandshake(nc, l.cfg.Secret, newNonce(), func(h hello) string {
		var reason string
		link, reason = l.match(h)
		return reason
	})
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("tcp: handshake not done within HandshakeTimeout (%v): %w", l.cfg.HandshakeTimeout, err)
	}
	if err != nil {
		return nil, h, nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, h, link, nil
}

// match finds the link an authenticated hello asks for, or says why there
// is none.
func (l *Listener) match(h hello) (*Link, string) {
	if err := checkStream(h.stream); err != nil {
		return nil, err.Error()
	}
	if err := checkEnd("hello", h.end); err != nil {
		return nil, err.Error()
	}
	l.mu.Lock()
	link := l.links[h.stream]
	l.mu.Unlock()
	switch {
	case link == nil:
		return nil, fmt.Sprintf("no stream %q here", h.stream)
	case h.end == link.end:
		return nil, fmt.Sprintf("stream %q: this side is the %v end too", h.stream, link.end)
	}
	return link, ""
}
