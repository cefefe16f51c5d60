package tcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Listener accepts connections for many streams on one address. Each stream
// served here has a Link (see Listener.Link); a peer dials in naming the
// stream and its own end, and once the handshake succeeds the connection
// becomes that link's, replacing any it had. A connection that fails the
// handshake (garbage, a wrong secret, an unknown stream, no client
// certificate when TLS asks for one) is closed before any frame is read,
// and other streams are not disturbed.
//
// The listener starts one goroutine that accepts, and one per connection
// for its handshake.
type Listener struct {
	ln  net.Listener
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	links  map[string]*Link
	closed bool

	wg sync.WaitGroup
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
	l := &Listener{ln: ln, cfg: cfg, log: cfg.Logger.With("carrier", "tcp", "listen", ln.Addr().String()), links: map[string]*Link{}}
	l.log.Info("listening", "addr", ln.Addr().String(), "tls", onOff(cfg.TLS != nil))
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

// Close stops accepting, closes every link made by Link, and waits for the
// listener's goroutines. Idempotent.
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
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(nc)
		}()
	}
}

// serve authenticates one accepted connection and hands it to its link.
func (l *Listener) serve(nc net.Conn) {
	remote := nc.RemoteAddr().String()
	nc.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	if l.cfg.TLS != nil {
		tc := tls.Server(nc, l.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			l.log.Warn("refused a connection: TLS handshake failed", "remote", remote, "err", err)
			nc.Close()
			return
		}
		nc = tc
	}
	rw := bufio.NewReadWriter(bufio.NewReaderSize(nc, 64<<10), bufio.NewWriter(nc))
	var link *Link
	h, err := listenHandshake(rw, l.cfg.Secret, func(h hello) string {
		if err := checkStream(h.stream); err != nil {
			return err.Error()
		}
		l.mu.Lock()
		link = l.links[h.stream]
		l.mu.Unlock()
		switch {
		case link == nil:
			return fmt.Sprintf("no stream %q here", h.stream)
		case h.end == link.end:
			return fmt.Sprintf("stream %q: this side is the %v end too", h.stream, link.end)
		}
		return ""
	})
	if err != nil {
		l.log.Warn("refused a connection", "remote", remote, "stream", h.stream, "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	link.install(newConn(nc, rw.Reader, l.cfg, link.in, link.connEnded))
}
