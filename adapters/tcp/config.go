package tcp

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Config. A zero field takes the default named here.
const (
	// DefaultMaxFrameSize bounds one frame in either direction. It matches
	// the delivery protocol's default frame size.
	DefaultMaxFrameSize = 1 << 20
	// DefaultKeepalive is how long a connection may send nothing before it
	// sends a ping, so the peer can tell quiet from dead.
	DefaultKeepalive = 2 * time.Second
	// DefaultIdleTimeout is how long a connection may receive nothing, not
	// even a ping, before it is taken for dead and closed.
	DefaultIdleTimeout = 10 * time.Second
	// DefaultDialTimeout bounds one connection attempt, TLS included.
	DefaultDialTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds the handshake on an accepted connection,
	// so a peer that connects and says nothing holds nothing for long.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the dialing side's
	// wait between attempts, which doubles after each failure.
	DefaultReconnectMin = 50 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
	// DefaultWriteBuffer bounds the bytes waiting to be written on a
	// connection; Send blocks beyond it, which passes the peer's
	// back-pressure on.
	DefaultWriteBuffer = 4 << 20
	// DefaultMaxHandshakes bounds the connections a Listener holds in their
	// handshake at once; DefaultMaxHandshakesPerHost those from one source
	// address. Each costs a goroutine and a few hundred bytes until it is
	// authenticated or HandshakeTimeout ends it, so a flood of silent
	// connections holds at most 64 of them for 5 s each.
	DefaultMaxHandshakes        = 64
	DefaultMaxHandshakesPerHost = 8

	// MinSecretLen is the shortest Secret accepted: a guess at a shorter one
	// is too likely to succeed. Use a long random secret (32 bytes from
	// crypto/rand, say), not a password.
	MinSecretLen = 16
)

// Config configures both sides of the TCP carrier. Both ends of a stream
// must agree on Secret, and on TLS if either uses it.
type Config struct {
	// Secret, when set, is a shared secret each side proves it knows before
	// any frame crosses the connection: an HMAC-SHA256 challenge and
	// response in both directions, the dialer first, so that the listener
	// refuses a wrong proof without sending anything derived from the
	// secret; the secret itself never crosses the wire (see the package
	// documentation). A peer that fails is refused. At least MinSecretLen
	// bytes (a shorter one is a *ConfigError); make it random. Default:
	// none, and the handshake checks only the protocol version and the
	// stream: then anyone who reaches the listener can take a stream's
	// connection over, since a new connection replaces the old.
	//
	// The secret authenticates connections, not frames: tcp does not seal
	// the frames after the handshake. On a plain connection they travel in
	// clear, someone on the path can change them, and an eavesdropper who
	// records a handshake can test guesses of the secret against it at
	// leisure (hence a long random one). Use TLS for the connection, and
	// the delivery package's sealing for frames end to end.
	Secret string

	// TLS, when set, wraps every connection in TLS. The listening side uses
	// its Certificates (or GetCertificate), which it must have (Listen
	// refuses it with a *ConfigError otherwise), and, to require client
	// certificates, ClientAuth and ClientCAs; the dialing side uses its
	// RootCAs to verify the listener, and its Certificates as the client
	// certificate when the listener asks for one. That is how crypto/tls
	// reads one tls.Config, so one Config serves a Carrier that both listens
	// and dials. Default: plain TCP.
	TLS *tls.Config

	// MaxFrameSize bounds a frame. Send refuses a larger one with a
	// *delivery.FrameTooLargeError, and a peer that sends one loses its connection.
	// Default DefaultMaxFrameSize.
	MaxFrameSize int

	// Keepalive is the longest a connection stays silent before it pings.
	// Default DefaultKeepalive.
	Keepalive time.Duration
	// IdleTimeout is the longest a connection may hear nothing before it
	// is closed as dead. Default DefaultIdleTimeout; must exceed Keepalive.
	IdleTimeout time.Duration

	// DialTimeout bounds a connection attempt. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the handshake on both sides. Default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the dialing side's backoff.
	// Defaults DefaultReconnectMin and DefaultReconnectMax.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// WriteBuffer bounds the bytes queued for writing on a connection.
	// Default DefaultWriteBuffer; at least MaxFrameSize.
	WriteBuffer int

	// MaxHandshakes bounds the connections a Listener holds in their
	// handshake (TLS included) at once, and MaxHandshakesPerHost those from
	// one source address (an IPv6 address counts by its /64). A connection
	// over either cap is closed as soon as it is accepted, and counted in
	// Listener.Stats; the authenticated connections of the streams are not
	// counted against either. Defaults DefaultMaxHandshakes and
	// DefaultMaxHandshakesPerHost. The dialing side ignores them.
	MaxHandshakes        int
	MaxHandshakesPerHost int

	// Logger receives connection events: listening, dialing, connected,
	// lost, refused. Default: none.
	Logger *slog.Logger
}

// ConfigError names a Config field that was rejected and why. Not worth
// retrying with the same Config.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("tcp: invalid Config.%s=%v: %s", e.Field, e.Value, e.Reason)
}

func (c Config) withDefaults() (Config, error) {
	sizes := []struct {
		name     string
		v        *int
		def, min int
	}{
		{"MaxFrameSize", &c.MaxFrameSize, DefaultMaxFrameSize, 1},
		{"WriteBuffer", &c.WriteBuffer, DefaultWriteBuffer, 1},
		{"MaxHandshakes", &c.MaxHandshakes, DefaultMaxHandshakes, 1},
		{"MaxHandshakesPerHost", &c.MaxHandshakesPerHost, DefaultMaxHandshakesPerHost, 1},
	}
	for _, s := range sizes {
		switch {
		case *s.v == 0:
			*s.v = s.def
		case *s.v < s.min:
			return c, &ConfigError{Field: s.name, Value: *s.v, Reason: "must be positive"}
		}
	}
	if c.Secret != "" && len(c.Secret) < MinSecretLen {
		// The value is the secret's length only: an error must not print it.
		return c, &ConfigError{Field: "Secret", Value: fmt.Sprintf("(%d bytes)", len(c.Secret)), Reason: fmt.Sprintf("at least %d bytes, or none", MinSecretLen)}
	}
	if c.MaxFrameSize > maxFrameLimit {
		return c, &ConfigError{Field: "MaxFrameSize", Value: c.MaxFrameSize, Reason: fmt.Sprintf("at most %d", maxFrameLimit)}
	}
	if c.WriteBuffer < c.MaxFrameSize {
		c.WriteBuffer = c.MaxFrameSize + frameHeaderLen
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Keepalive", &c.Keepalive, DefaultKeepalive},
		{"IdleTimeout", &c.IdleTimeout, DefaultIdleTimeout},
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"HandshakeTimeout", &c.HandshakeTimeout, DefaultHandshakeTimeout},
		{"ReconnectMin", &c.ReconnectMin, DefaultReconnectMin},
		{"ReconnectMax", &c.ReconnectMax, DefaultReconnectMax},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return c, &ConfigError{Field: d.name, Value: *d.v, Reason: "must be positive"}
		}
	}
	if c.IdleTimeout <= c.Keepalive {
		return c, &ConfigError{Field: "IdleTimeout", Value: c.IdleTimeout, Reason: "must exceed Keepalive (" + c.Keepalive.String() + ")"}
	}
	if c.ReconnectMax < c.ReconnectMin {
		return c, &ConfigError{Field: "ReconnectMax", Value: c.ReconnectMax, Reason: "must not be below ReconnectMin (" + c.ReconnectMin.String() + ")"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
