// Package adaptertest is the conformance suite every carrier passes, in the
// manner of Watermill's pubsub tests: a carrier's tests describe it with a
// Carrier (how to open links, how to cut its connections, which properties
// it claims) and call Run.
//
// The suite checks what the carrier itself promises with raw frames (order
// in both directions, queueing, broker-level release, its frame limit) and
// what the protocol achieves over it (exactly once in order, large chunked
// messages, many streams at once, close and reopen, consumer restarts,
// connection cuts, a slow consumer).
//
// Its helpers (Payload, StartProducer, StartConsumer, CheckLifetimes, ...)
// serve carriers' own longer tests too.
package adaptertest
