// Package tcp carries the delivery protocol over direct TCP connections,
// with no broker between producer and consumer: the queue-less side of the
// comparison.
//
// One side listens and the other dials; either side may be the producer
// end or the consumer end. A Carrier (New) is the delivery.Carrier of both:
// made with the address and the end that listens, its Link serves that end
// from a Listener it starts on first use and dials for the other, so each
// process opens its links the same way whichever end it runs. Listen and
// Dial are the two sides on their own. Each stream has a connection of its
// own, so many streams share a listener without sharing a socket's
// head-of-line.
//
// A process that runs both ends (the bridge's demo and bench) makes one
// Carrier, usually on port 0: its dialing links dial its own listener at
// the port the listener took, and a Link of the dialing end starts the
// listener if none has started yet, since nothing else listens there.
//
// # Connections
//
// A new connection is authenticated before any frame crosses it: the
// dialing side names its stream and end, and both sides prove they know
// Config.Secret with an HMAC-SHA256 challenge and response, the listener
// first; with Config.TLS the whole exchange runs inside TLS, and client
// certificates can be required. One Config.TLS serves both sides of a
// Carrier: the listener takes its Certificates, ClientAuth and ClientCAs,
// the dialer its RootCAs and, as a client certificate, its Certificates. A peer that sends garbage, the wrong
// secret, an unknown stream or no certificate is refused and its
// connection closed; streams in flight are not disturbed.
//
// Frames are length-prefixed. Send queues a frame and returns; the
// connection's writer writes everything queued since its last write in one
// syscall, so frames coalesce under load, and Send blocks once
// Config.WriteBuffer bytes wait, passing the peer's back-pressure on. Reads
// are buffered. A connection silent for Config.Keepalive pings; one that
// hears nothing for Config.IdleTimeout is taken for dead and closed.
//
// # Reconnecting
//
// The dialing side reconnects whenever its connection is lost or refused,
// backing off from ReconnectMin to ReconnectMax; the listening side takes
// the peer's next connection, which replaces any older one. Send waits for
// a connection rather than fail, and Receive carries on across connections.
// Frames in flight when a connection breaks are lost, and the protocol
// resends them: delivery stays exactly once and in order. Each loss and
// reconnect is logged, and Link.Status counts them; Carrier.Status sums its
// links' (the carrier has no connection of its own).
//
// # Goroutines
//
// A Listener runs one goroutine that accepts and one per connection during
// its handshake. A dialing Link runs one goroutine that dials. Every
// connection runs a reader and a writer. A Carrier runs none of its own.
// Close on a Link or a Listener stops and waits for all of them; a
// Listener's Close closes the links made from it, and a Carrier's Close
// closes every link it made and then its listener.
package tcp
