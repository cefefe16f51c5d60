// Package delivery is a reliable, ordered, flow-controlled point-to-point
// delivery protocol, modelled on Akka's reliable delivery
// (akka.actor.typed.delivery, Akka.Delivery in .NET), that runs over any
// carrier of frames: a TCP connection, a message broker, or the in-memory
// pipe of adapters/memory.
//
// # Roles
//
// A ProducerController numbers the messages the application gives it, sends
// them within the window its consumer granted, keeps them until they are
// confirmed and resends what was lost. A ConsumerController, at the other
// end of the carrier, drops duplicates, asks again for what is missing,
// reassembles chunked messages, hands the application one message at a time
// in order, and grants more window as the application confirms.
//
//	producer app --Send--> ProducerController ==frames==> ConsumerController --Receive/Confirm--> consumer app
//	                                         <==control==
//
// The application on the producer side sends only when asked: Send waits
// for demand (Akka's RequestNext), TrySend fails fast with ErrNoDemand, and
// SendWithConfirmation returns a Confirmation that resolves once the
// consumer application confirmed the message.
//
// # Work pulling
//
// A WorkPullingProducerController serves many workers on one stream, as
// Akka's WorkPullingProducerController does: each message goes to exactly
// one worker with demand, and Send waits while none has any. A worker is a
// ConsumerController made by NewWorkerController with a worker ID.
//
//	producer app --Send--> WorkPullingProducerController --+--> <stream>_w_a ==> worker a
//	                                                       +--> <stream>_w_b ==> worker b
//	                       <stream> <== hello (worker ID) from each worker
//
// It is a layer over point-to-point: the producer runs one
// ProducerController per worker, on the worker's own stream
// (WorkerStream), so what a worker gets is numbered, windowed, resent and
// confirmed exactly as above, in order and once. Discovery needs nothing
// of a carrier but its two ends: a worker says hello on the stream itself
// (opening its consumer end while it is not served; on tcp and the memory
// carrier workers take turns there, since a new link of an end replaces the
// last), and the producer, which holds the stream's producer end, opens the
// worker's stream. Both ends of a worker's stream send a heartbeat every
// HeartbeatInterval; their work frames are taken off the link before the
// controllers see it.
//
// The producer keeps every message until the worker that finally got it
// confirms it. A worker that leaves (Shutdown or Close) says how far it
// confirmed; one whose stream fails, or that is silent past WorkerTimeout,
// is dead; either way every message it had not confirmed goes to the other
// workers before any new one. Only those messages can be delivered twice.
// A Confirmation resolves when the worker that finally got its message
// confirms it. With a DurableQueue the producer stores whole messages under
// its own numbering, drops each as it is confirmed, in whatever order the
// workers confirm (DurableUpdate.Drop), and a restarted producer hands
// everything still stored to the workers present. A message is never split
// across workers: it is chunked, if at all, on one worker's stream.
//
// Hostile peers: a producer serves at most MaxWorkers workers and opens at
// most one new worker's stream each 5 ms; a worker that never speaks on its
// stream is dropped after WorkerTimeout. With a secret, give both sides an
// opener that seals (Seal) what it opens: hellos and heartbeats are then
// sealed like every other frame.
//
// # The protocol
//
// Every frame carries the producer's ID and epoch. The epoch tells one
// lifetime of a producer from the next: a consumer accepts a new numbering
// only from a message marked first, from a larger epoch of the same
// producer, and drops late frames of older epochs. The producer sends its
// first message unasked and repeats it every FirstResendInterval until the
// consumer answers; a consumer without a numbering registers, repeatedly,
// and the producer answers a registration by sending everything
// unconfirmed again, the oldest marked first, and as much more as the
// window the registration grants. So either side may start first, and
// either may restart.
//
// The consumer grants a window of Window sequence numbers and asks for the
// next half window each time half is confirmed. A message above the next
// expected number reveals a gap: the consumer asks for a resend from the
// expected number and drops what comes until it arrives. A message below it
// is a duplicate and is dropped. While the consumer waits for something, a
// retry timer (ResendMin, growing 1.5 times to ResendMax) repeats its last
// request; a window request sent by the timer makes the producer resend
// everything unconfirmed, which recovers a lost last message.
//
// Messages larger than ChunkSize travel as chunks, one sequence number each,
// and are reassembled before delivery. In only-flow-control mode nothing is
// resent: lost messages are skipped, so delivery is at most once.
//
// A message may carry headers (SendMessage, Delivery.Headers): names and
// values bounded by MaxHeaders and MaxHeaderBytes, inside the protocol's
// frames (an extension of the message's first chunk), so they survive
// chunking, resends and the durable queue, and cost nothing when absent.
//
// Every control message that can confirm carries the largest message the
// consumer takes (its MaxMessageSize). A producer refuses larger messages
// at Send with a *MessageTooLargeError; one it took before it knew goes as a
// tombstone, which the consumer skips, and its Confirmation fails with the
// same error. A consumer never stops on a message, whatever it is.
//
// # Wire format
//
// Version 2 (wire.go has the layout): a frame is a header (magic, version,
// kind, the producer's epoch, the consumer's, the producer ID) and
// length-prefixed messages; messages may carry extensions, which cost
// nothing when absent and let the format grow inside the version (an
// unknown critical one refuses the frame). A frame of another version is
// dropped, counted and logged with both versions named: both ends of a
// stream run the same one. Work pulling adds a frame kind (wire_work.go):
// hello, heartbeat, leave and bye. A point-to-point producer that receives
// one drops it with an error saying the ends run different modes; a
// work-pulling producer refuses a point-to-point consumer's frames on its
// stream likewise (WorkPullingStats.WrongMode), so a mixed pair is told,
// not silently stuck. Point-to-point peers never see the new kind.
//
// # Bounds against any peer
//
// Anyone who can publish to a stream's subjects, queues or topics, or reach
// its port, can send frames. Without a secret they can forge confirmations,
// windows and messages, and the protocol cannot tell; but no frame makes a
// controller stop or grow without bound. A producer acts on at most one
// registration a frame and one each 100 ms, ignores a late repeat of the
// registration of the consumer it follows (which keeps its window), and
// merges resends, which wait for the writer like sends do, so what it
// builds ahead stays bounded whatever it is asked. A consumer drops (and
// counts) what is past the window it granted, skips messages larger than
// it takes without buffering them, and refuses a producer epoch more than
// an hour ahead of its clock, which would otherwise hold the stream for
// ever. Warnings a peer can cause are logged at most once every 10 s, with
// a count; the counters in Stats count every one.
//
// # Sealed frames
//
// Seal wraps any Link so that its frames are sealed end to end with
// AES-256-GCM, under keys derived (HKDF) from a Secret per stream and per
// direction: with one, no frame from a stranger is acted on, whatever
// carries it. A frame that does not open is dropped before it is parsed,
// counted by why (SealStats), and released. Replays of the peer's own
// frames open, and are harmless: messages are deduplicated by sequence
// number, confirmations are cumulative, registrations rate-limited. A
// second, previous secret opens frames too, so a secret rotates without
// stopping the stream. seal.go has the layout of a sealed frame.
//
// # Guarantees
//
// Without a crash, whatever the carrier does (loss, duplication,
// reordering, disconnects), the consumer application gets every message
// once and in order. When the consumer restarts, the producer resends what
// was not confirmed: at least once, in order. When the producer restarts
// with no durable queue, what it had not had confirmed is lost. In
// only-flow-control mode delivery is at most once.
//
// # Carriers
//
// A carrier implements Carrier, which opens a Link for each end of a
// stream: Send a frame, Receive a frame, Close. A controller owns the link
// it is given, from its constructor on, and closes it when it stops. Frames
// from a broker may carry a Release (the broker's ack); the consumer
// controller calls it only when every message in the frame has been
// confirmed, so a queue keeps a message until the application is done with
// it. A link that cannot carry large frames says so with FrameSizeLimiter.
// The wire format is versioned, length-checked, and batches many protocol
// messages into one frame; the busier the link, the larger the batches.
//
// # Goroutines
//
// Each controller's Run starts three goroutines and waits for them before it
// returns: the controller itself, which owns all protocol state and is
// driven by channels; a reader, which receives and checks frames; and a
// writer, which sends them. A producer with a durable queue runs a fourth,
// which stores and syncs, so the controller never waits on a disk. The mailboxes between the application and the
// controller are the only state shared, under a mutex of their own. A
// frame's Release is called from the consumer controller's goroutine and
// must not block for long. Close stops a controller at once, Shutdown stops
// it gracefully; both are safe to call from any goroutine, and Close is
// idempotent.
package delivery
