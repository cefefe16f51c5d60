package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
)

// Dial returns the link for one end of a stream whose other end listens at
// addr (see Listen). The link connects in the background and again,
// backing off from ReconnectMin to ReconnectMax, whenever its connection is
// lost or refused, until Close; Send waits for a connection. So the two
// sides may start in either order. Dial itself returns at once: it fails
// only on a bad stream name, end or Config, or with ctx's error if ctx is
// done already; ctx bounds nothing after it returns.
//
// With Config.TLS the link verifies the listener with the config's RootCAs
// (and ServerName, by default addr's host) and offers its Certificates as
// its client certificate when the listener asks for one.
//
// The link starts one goroutine that dials, and two per connection (see
// Link).
func Dial(ctx context.Context, addr, stream string, end delivery.End, cfg Config) (*Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	if err := checkEnd("dial", end); err != nil {
		return nil, err
	}
	if err := checkAddr("dial", addr); err != nil {
		return nil, err
	}
	l := newLink(stream, end, cfg)
	l.log.Info("dialing", "addr", addr, "tls", onOff(cfg.TLS != nil))
	l.wg.Add(1)
	go l.dialLoop(addr)
	return l, nil
}

func (l *Link) dialLoop(addr string) {
	defer l.wg.Done()
	ctx := l.life
	wait := backoff.New(backoff.Policy{Min: l.cfg.ReconnectMin, Max: l.cfg.ReconnectMax})
	failures := 0
	for {
		c, err := l.dialOnce(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			l.setErr(err)
			// The first failure of a run is worth a warning, and so is every
			// refusal (a configuration problem, or a listener that is not
			// ours), but no more than one per warnInterval: the rest go to
			// the debug level.
			d := wait.Next()
			args := []any{"addr", addr, "attempt", failures, "retry_in", d, "err", err}
			warn := failures == 1 || errors.Is(err, ErrRefused)
			if !warn || !l.warnDial.warn(l.log, "cannot connect; retrying", args...) {
				l.log.Debug("cannot connect; retrying", args...)
			}
			if !backoff.Sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		connected := time.Now()
		if !l.install(c) {
			return
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return
		}
		// A connection that ends soon after it is made (replaced by
		// another dialer's on the same stream end, as work-pulling
		// workers taking turns to say hello are, or cut by the listener)
		// is dialed again after a wait, as a failure is: otherwise two
		// such dialers replace each other as fast as they can connect,
		// and take the listener's handshake slots from everyone else.
		if time.Since(connected) >= stableConnection {
			wait.Reset()
			continue
		}
		if !backoff.Sleep(ctx, wait.Next()) {
			return
		}
	}
}

// stableConnection is how long a connection must last for the next one to
// be dialed at once when it ends.
const stableConnection = time.Second

// dialOnce connects, secures and authenticates one connection.
func (l *Link) dialOnce(ctx context.Context, addr string) (*conn, error) {
	dialer := net.Dialer{Timeout: l.cfg.DialTimeout, KeepAlive: l.cfg.IdleTimeout}
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(l.cfg.HandshakeTimeout)
	nc.SetDeadline(deadline)
	if l.cfg.TLS != nil {
		cfg := l.cfg.TLS
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		nc = tc
	}
	// The handshake reads exact lengths, so nothing is buffered ahead of
	// the first frame.
	if err := dialHandshake(nc, l.cfg.Secret, l.stream, l.end, newNonce()); err != nil {
		nc.Close()
		if re := (*RefusedError)(nil); !errors.As(err, &re) {
			err = fmt.Errorf("tcp: handshake cut short (a listener at its MaxHandshakes cap hangs up at once): %w", err)
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return newConn(nc, l.cfg, l.in, l.connEnded), nil
}
