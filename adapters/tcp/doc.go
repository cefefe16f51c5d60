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
// Config.Secret with an HMAC-SHA256 challenge and response, the dialer
// first; with Config.TLS the whole exchange runs inside TLS, and client
// certificates can be required. One Config.TLS serves both sides of a
// Carrier: the listener takes its Certificates, ClientAuth and ClientCAs,
// the dialer its RootCAs and, as a client certificate, its Certificates. A
// peer that sends garbage, the wrong secret, an unknown stream or no
// certificate is refused and its connection closed; streams in flight are
// not disturbed.
//
// # The handshake
//
// In order, with the sizes of the fields in bytes (version 2; handshake.go
// has the details):
//
//	dialer   -> listener  hello      "BRTC" version(1)=2 end(1) nonceD(16) len(1) stream(len)
//	listener -> dialer    challenge  0 nonceL(16), or a refusal: 1 len(1) reason
//	dialer   -> listener  proof      macD(32)
//	listener -> dialer    verdict    0 macL(32),  or a refusal: 1 len(1) reason
//
// where macD and macL are HMAC-SHA256 under the secret of a label naming
// the side ("bridge-tcp/2 dialer", "bridge-tcp/2 listener"), both nonces,
// the end and the stream. The listener's challenge is a random nonce and
// nothing else, and it checks the proof (in constant time) before it
// computes or sends anything from the secret: a dialer without the secret
// learns that its guess was wrong and nothing it could test another guess
// against. Only an authenticated dialer hears whether the stream is served
// here. The dialer in turn checks the listener's proof before it sends a
// frame. A dialer of another handshake version is refused with a reason
// naming both versions.
//
// What the handshake guarantees: with a Secret, a connection becomes a
// stream's only after both sides proved they hold it, for this stream and
// end, on this connection (the nonces are fresh, so a recorded handshake
// does not replay); without one, it checks the version and the stream
// only, and anyone who reaches the listener can take a stream's connection
// over (a new connection replaces the old). What it does not: tcp does not
// seal the frames that follow. On a plain connection they travel in clear and someone on the
// path can change or inject them; an eavesdropper, or whoever takes the
// listener's address, sees the dialer's proof and can test guesses of a
// weak secret against it offline, which is why a Secret has at least
// MinSecretLen bytes and should be random. TLS (with the listener's
// certificate verified) closes both; sealing frames end to end, on every
// carrier, is the delivery package's, above the carrier.
//
// A listener spends little on a connection before it is authenticated: a
// goroutine's stack and a few hundred bytes, read in exact lengths; the
// read buffer (64 KiB) and the write queue come only after the handshake. At
// most Config.MaxHandshakes connections (default 64) are in their
// handshake at once, at most Config.MaxHandshakesPerHost (default 8) from
// one source address, each for at most HandshakeTimeout; one over a cap is
// closed at once. Listener.Stats counts them all. Warnings a peer causes
// (a refusal, garbage, a connection over a cap, a lost connection) are
// logged at most once per 10 s of each kind, saying how many were held
// back since.
//
// Frames are length-prefixed. Send queues a frame and returns; the
// connection's writer writes everything queued since its last write in one
// syscall, so frames coalesce under load, and Send blocks once
// Config.WriteBuffer bytes wait, passing the peer's back-pressure on. A
// frame of 256 KiB or more (the protocol's frames of large messages) that
// finds nothing queued is written by its Send itself, header and payload
// gathered, without the copy into the queue; Send then returns once it is
// written, and a ctx ending mid-frame ends the connection. Reads are
// buffered. A connection silent for Config.Keepalive pings; one that
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
// its handshake (at most MaxHandshakes). A dialing Link runs one goroutine that dials. Every
// connection runs a reader and a writer. A Carrier runs none of its own.
// Close on a Link or a Listener stops and waits for all of them; a
// Listener's Close closes the links made from it, and a Carrier's Close
// closes every link it made and then its listener.
//
// # Work pulling
//
// A work-pulling producer (delivery.WorkPullingProducerController) listens;
// its workers dial it, so the carrier's listening end is the producer's.
// Each worker's stream has its own connection, so a worker's frames reach
// only it. Workers say hello on the stream's own connection, taking turns
// (a new connection replaces the last), each holding it only until it is
// served. A dialer whose connection ended within a second of being made
// waits before it dials again, as after a failure, so that workers taking
// turns do not replace each other as fast as they can connect. A departed worker is noticed by its leave, or by the silence of
// its heartbeats (a connection lost and not replaced is silent).
package tcp
