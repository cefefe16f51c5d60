// Package nats carries the delivery protocol's frames over NATS: core NATS
// by default, JetStream as an option, and an embedded nats-server
// (StartServer) for a bridge that has no broker configured and for tests.
//
// # Topology
//
// A Carrier (New) is the package's delivery.Carrier: Link (or OpenLink,
// behind the interface) opens the producer end and the consumer end of
// named streams, Status reports the carrier's own connection, and
// DeleteStream removes a stream's JetStream stream. Stream s uses two
// subjects under Config.SubjectPrefix (default "bridge"):
//
//	bridge.s.data      data frames, producer end -> consumer end
//	bridge.s.control   control frames, consumer end -> producer end
//
// In ModeCore both are plain core NATS subjects: at most once, and what is
// published while nobody subscribes is gone; the protocol resends. In
// ModeJetStream the data subject is captured by a JetStream stream of its
// own, named JetStream.StreamPrefix + "_" + s (default "bridge_s"), with
// work-queue retention, and read through one durable pull consumer
// (JetStream.Durable, default "bridge") with explicit acks. Control frames
// stay on core NATS in both modes: they are small, repeated by the
// protocol's timers, and only the latest matters, so a stored control frame
// would only replay stale state to a restarted producer. The stream and the
// consumer are created when a link first needs them, with the settings of
// JetStreamConfig; existing ones are used as they are (change them with the
// nats CLI).
//
// Stream names are 1 to 128 letters, digits, '-' or '_', so that they make
// a subject token and a JetStream name. A Carrier holds at most one link
// per stream and end: opening an end again closes the previous link.
//
// # Frame size
//
// The server refuses messages over its max_payload (1 MiB by default). A
// link reports its limit through delivery.FrameSizeLimiter: max_payload, less
// 128 bytes for the Nats-Msg-Id header in ModeJetStream (and no more than
// the JetStream stream's max_msg_size). The producer controller keeps its
// frames and chunks under it; Send refuses a larger frame with a
// *delivery.FrameTooLargeError and the link stays usable.
//
// # What is acked when
//
// ModeJetStream, producer end: each data frame is published asynchronously
// with a Nats-Msg-Id unique to it; its ack is awaited on the link's own
// goroutine. A publish that fails for a reason that may pass (the
// connection dropped, the ack timed out, the stream did not answer) is
// published again with the same id, so the server stores it once; a frame
// given up on (after 10 tries, or an error that will not pass) is left to
// the protocol's resend. Send waits while JetStream.MaxPendingFrames or
// MaxPendingBytes are unacknowledged.
//
// ModeJetStream, consumer end: a frame carries a Release, which the consumer
// controller calls once every message in it is confirmed (or found a
// duplicate); only then is the frame acked and forgotten by the server.
// Frames held longer than a third of AckWait get in-progress acks, so the
// server does not deliver a copy of a frame the application still works
// on. Close naks every frame held, including those fetched ahead of Receive,
// oldest first, so that the next consumer end gets them at once; a consumer
// end that dies without Close leaves them to AckWait. On servers before
// 2.10, whose pull requests outlive the client that made them, the pull
// asks with a 2 s expiry and Close naks with a 3 s delay, or the first
// frame nak'ed would go to the dead request.
//
// Core NATS has nothing to ack: frames carry no Release, and control frames
// never do.
//
// # Reconnects
//
// Every connection reconnects by itself, forever by default
// (Config.MaxReconnects), Config.ReconnectWait apart, and says so in the log
// and in Status().Reconnects; Status().Err tells why a link is down.
// Receive blocks across reconnects. In ModeCore, and for control frames,
// Send does not wait for the connection: the client keeps what is published
// while disconnected in its reconnect buffer (Config.ReconnectBufSize) and
// Send fails past it; the protocol resends either way, and a Send that
// waited would only hold back the protocol's own resends. A JetStream
// producer end waits instead, as its publishes stay unacknowledged. After a
// server restart a JetStream consumer resumes pulling by itself; if the
// server lost the stream or the consumer (memory storage), the link creates
// them again and the protocol resends what they held.
//
// A subscription whose Receive falls far behind (the client's pending
// limits, 64 MiB) drops frames: the link logs it and counts it in
// Stats().SlowConsumerEvents and SlowConsumerDrops, and the protocol
// resends. JetStream consumers fetch at most JetStream.PullMaxBytes ahead,
// so they are never slow in that sense.
//
// # Goroutines
//
// nats.go runs its own goroutines for each connection and subscription and
// calls the link's handlers from them; the handlers only hand frames to
// Receive and update counters, and block only while Receive is behind. A
// link starts goroutines of its own only in ModeJetStream: the producer end
// one that settles publish acks, the consumer end one that sends
// in-progress acks and one that recreates a lost stream or consumer. Close
// stops them and waits for them. Carrier.Close closes every link, then the
// carrier's own connection; both are idempotent.
//
// # Embedded server
//
// StartServer runs a nats-server in the process with JetStream and a store
// directory, on a fixed or a free port, until Shutdown. (The tests restart
// a broker under a stream with adaptertest.StartNATS, a test server that
// stops and starts again on the same port and store.)
//
// # Work pulling
//
// Each worker of a work-pulling stream has a stream of its own,
// <stream>_w_<worker ID>, with its own subjects (and, with JetStream, its own
// JetStream stream), so a worker's frames reach only it; workers say hello
// on the stream's control subject, which all may publish to. A departed
// worker is noticed by its leave, or by the silence of its heartbeats.
package nats
