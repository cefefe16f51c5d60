// Package adaptertest is the conformance suite every carrier passes, in the
// manner of Watermill's pubsub tests: a carrier's tests describe it with a
// Spec (the delivery.Carrier under test, how to cut its connections, which
// properties it claims) and call Run. The suite opens every link through
// Spec.Carrier's OpenLink, as the service does, so a carrier is tested as
// it is used.
//
// The suite checks what the carrier itself promises with raw frames (order
// in both directions, queueing, broker-level release, its frame limit and
// the delivery.FrameTooLargeError it refuses a frame with) and what the
// protocol achieves over it (exactly once in order, large chunked messages,
// many streams at once, close and reopen, consumer restarts, connection
// cuts, a slow consumer).
//
// Its helpers (Payload, StartProducer, StartConsumer, CheckLifetimes, ...)
// serve carriers' own longer tests too, and StartNATS, RabbitMQ and Kafka
// give tests a broker: StartNATS an in-process NATS server that can be
// stopped and restarted on the same port and store under a stream; Kafka
// the Apache Kafka the tests share (KafkaOrKfake falls back to kfake, an
// in-process test broker, in a plain `go test` with none running), which
// KafkaExclusive hands a test alone, to stop and restart it through its
// control command (.ci/kafka).
package adaptertest
