// Package kafka carries the delivery protocol's frames over Apache Kafka,
// with github.com/segmentio/kafka-go as the client.
//
// # Topology
//
// A Carrier (New) is the package's delivery.Carrier: Link (or OpenLink,
// behind the interface) opens an end of a stream, and DeleteStream deletes a
// stream's topics (and its group, when the group is the stream's own).
//
// Every stream has two topics of its own, of one partition each, made by the
// carrier when they are missing and the broker allows it (names from
// Config.DataTopic and Config.ControlTopic, "bridge.{stream}.data" and
// "bridge.{stream}.control" by default):
//
//	producer end --data frames-->    bridge.<stream>.data     --> consumer end
//	producer end <--control frames-- bridge.<stream>.control  <-- consumer end
//
// One partition keeps a stream's frames in order, and a topic per stream
// (rather than streams sharing a topic by key) keeps the committed offset of
// a partition equal to one stream's progress, so one stream's consumer never
// reads, skips or waits for another's frames, and retiring a stream deletes
// its topics (Carrier.DeleteStream). The cost is two partitions per stream on
// the cluster. Only partition 0 is used; a topic made beforehand with more
// partitions works, the others stay empty.
//
// # What is acknowledged when
//
// Writes ask for acknowledgement by all in-sync replicas (acks=all; kafka-go
// defaults to none). Send queues a copy of the frame and returns at once, up
// to Config.SendBufferBytes of unacknowledged frames, then blocks. One
// goroutine per link writes the oldest queued frames as one record batch,
// one produce request at a time, so frames keep their order; it retries a
// failed write with backoff until the broker takes it or the link closes.
// kafka-go has no idempotent producer, so a write retried after a lost
// acknowledgement may store a frame twice: the protocol drops the duplicate.
// Frames over the broker's limit (Config.MaxMessageBytes, lowered to the
// topics' max.message.bytes when the broker reports it, less 512 bytes of
// record overhead: Link.MaxFrameSize) are refused by Send with a
// *delivery.FrameTooLargeError, and the producer controller keeps its frames
// under it.
//
// Reads use a kafka-go Reader bound to partition 0 and FetchMessage, which
// commits nothing (kafka-go's ReadMessage would commit before the message is
// processed). On the consumer end each frame carries a Release; the consumer
// controller calls it once the application confirmed every message in the
// frame. The link commits the offset one past the last frame of the longest
// run of frames, from the oldest on, that were all released (Kafka keeps one
// offset per partition), at most once per Config.CommitInterval and once
// more, within Config.CloseTimeout, when the link closes. Frames a consumer
// end received and did not release are read again by the next consumer end
// of the stream, which starts at the committed offset (at the first offset
// when nothing was committed). The producer end starts reading the control
// topic at its end: control frames from before it are for an earlier
// producer, and a consumer repeats what a new producer needs to hear. Control
// frames carry no Release and nothing is committed for them.
//
// # No consumer group membership
//
// The consumer end commits as a "simple consumer" (generation -1, no member
// id) in the group Config.GroupID ("bridge.{stream}" by default) and joins no
// group. A stream has one partition and one consumer, so a group would only
// add its rebalance: a consumer end that died without leaving the group
// (a crash, a cut connection) keeps the partition until its session times out
// (kafka-go's default is 30 s; a default broker allows no less than 6 s), and
// kafka-go's group reader has known open bugs around rebalances. Without one,
// a new consumer end reads from the committed offset at once, which is what
// lets unreleased frames come back in well under a second. The price: the
// carrier does not stop two consumer ends of one stream from reading at the
// same time. Run one per stream (the bridge does).
//
// # Reconnecting
//
// kafka-go reconnects by itself, both its Reader and its Transport; the
// carrier watches the connections it opens for them. A broker that closes or
// resets a connection, or a dial that fails, marks the link disconnected and
// is logged (Warn); the first bytes from a broker afterwards mark it
// connected again, count a reconnect in Link.Status and are logged (Info).
// So does a partition left without a leader, as a broker in a controlled
// shutdown leaves those it led: kafka-go then dials ":0", the address it has
// for no broker, and the link logs that the partition has no leader instead.
// The Carrier has no connection of its own: Carrier.Status sums its links'
// (connected while every open link is, their reconnects, closed links'
// included, and the reason of one that is down).
// Receive blocks across reconnects. Send keeps taking frames into its buffer
// while the broker is away and blocks once the buffer is full; the buffered
// frames are written when the broker is back. Blocking rather than failing
// keeps a short outage from costing the protocol a resend of everything in
// flight, and the buffer's bound keeps a long one from costing memory. A topic found missing (deleted,
// or a broker that lost its data) is created again. A link whose offset lies
// beyond the end of its topic's log (the broker lost data, or the topic was
// made anew) starts over from the log's first offset: the protocol drops what
// it already had and asks again for what was lost.
//
// # TLS and SASL
//
// Config.TLS turns TLS on for every connection; Config.SASL authenticates
// every connection with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, as hosted
// Kafka services require.
//
// # Goroutines
//
// The Carrier starts none. Each Link starts a reader (FetchMessage to
// Receive), a writer (the produce loop) and, on the consumer end, a
// committer; kafka-go's Reader and Transport start theirs. Link.Close stops
// reading at once, lets the writer and the committer finish within
// Config.CloseTimeout, and waits for the link's goroutines; Carrier.Close
// closes every link. A frame's Release only takes a lock and may be called
// from any goroutine.
//
// # Work pulling
//
// Each worker of a work-pulling stream has a stream of its own,
// <stream>_w_<worker ID>, with its own two single-partition topics, so a
// worker's frames reach only it and the number of workers is not bounded
// by a topic's partitions (a consumer group is not used); workers say hello
// through the stream's control topic. A departed worker is noticed by its
// leave, or by the silence of its heartbeats. Each worker ID leaves its two
// topics; the producer serves at most MaxWorkers at once.
package kafka
