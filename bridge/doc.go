// Package bridge is the service: it runs one end of a reliable delivery
// stream (Run), or both ends for a trial (Demo), over the carrier its
// configuration names, with the carriers in adapters/ and the protocol in
// delivery/. The bench is package bridge/bench; it opens its carriers
// through this package, as Run does.
//
// # Configuration
//
// Only the command reads the environment, through LoadConfig: every
// BRIDGE_* variable maps to a field of Config (or of a section, such as the
// bench's), whose tags give its name, default and meaning (PrintEnv lists
// them, as `bridge env` does). LoadConfig reports a value that does not
// parse and a BRIDGE_ variable nobody reads; ValidateRun, ValidateDemo and
// ValidateTransports check that the values fit together, the protocol's
// settings by the protocol's own rules (delivery's Validate). Every problem
// is a *ConfigError naming its variable, and they come all at once.
//
// # Carriers
//
// One table maps each BRIDGE_TRANSPORT name (tcp, nats, amqp, kafka) to the
// checks of its settings and to how its delivery.Carrier is opened from
// the configuration; OpenCarrier goes through it for `bridge run`, the demo
// and the bench. The mapping from BRIDGE_* variables to each adapter's
// configuration is written once, in TCPConfig, NATSConfig, AMQPConfig and
// KafkaConfig, which the bench's raw clients use too. With no
// BRIDGE_NATS_URL the nats carrier runs on an embedded server, which the
// first bridge process on the machine starts and the Carrier stops.
//
// # Secrets and exposure
//
// With BRIDGE_SECRET (or BRIDGE_SECRET_FILE) every link the service opens,
// for `bridge run`, the demo and the bench, is wrapped by delivery.Seal in
// one place (openLink: OpenStream and both ends of Run go through it), so
// every frame on every carrier is sealed for its stream and direction;
// BRIDGE_SECRET_PREVIOUS opens frames too while a secret rotates. What else
// both ends must share comes from the same secret by HKDF, for its own
// purpose: the tcp handshake's secret ("tcp handshake") and the embedded
// NATS server's token ("nats embedded server token"; without a secret, a
// random token in a file only the user reads: see embeddedNATSToken).
// Frames that do not open are counted (bridge_frames_rejected_total), and
// /readyz answers with a short reason while the peer's do not.
// ValidateRun refuses a tcp listener or the HTTP API on a non-loopback
// address without a secret (or client certificates) or a token, unless
// BRIDGE_INSECURE, and TLS settings a carrier would ignore. URLs are
// redacted (user info and query) in every log and error.
//
// # One end
//
// A producer takes messages from its source (stdin, HTTP, a generator) and
// hands them to a delivery.ProducerController, with a durable queue in
// BRIDGE_DURABLE_DIR if set; a consumer hands what its
// delivery.ConsumerController delivers to its sink (stdout, an HTTP
// webhook) through the controller's receive loop (Consume), which confirms
// each batch once the sink is done with it. Both serve /healthz, /readyz
// and /metrics on BRIDGE_HTTP_ADDR; the HTTP source adds POST /v1/messages.
// Run's context ending is the graceful stop SIGINT and SIGTERM ask for: the
// producer takes no more and waits for confirmations, the consumer hands
// out what it buffered, both for up to BRIDGE_SHUTDOWN_TIMEOUT.
//
// # Dead letters and batches
//
// With BRIDGE_DLQ the webhook sink gives up on a message the receiver
// refuses (a 4xx but 408 and 429) or that failed BRIDGE_SINK_MAX_ATTEMPTS
// times, and records it in a deadLetterQueue before the batch holding it
// is confirmed: a file of JSON lines, synced (fileDLQ), or a dead-letter
// stream on the stream's broker (jetStreamDLQ, amqpDLQ, kafkaDLQ), which
// acknowledged it as stored. A queue that cannot record stops the
// consumer. ListDLQ and ReplayDLQ are `bridge dlq list` and `replay`: they
// read the same queues, and replay removes each dead letter once the
// stream's consumer confirmed it again. BRIDGE_SINK_BATCH makes the sink
// POST many messages a request as NDJSON (ndjson.go), split in halves on a
// failure, with a DLQ, down to the message at fault; the HTTP source takes
// an NDJSON body all or none (delivery's TrySendAllMessages).
//
// # Work pulling
//
// With BRIDGE_MODE=work-pulling the producer is a
// delivery.WorkPullingProducerController and each consumer a worker
// (delivery.NewWorkerController) named BRIDGE_WORKER_ID; every link either
// opens, one per worker besides the stream's, is sealed under its own
// stream's name like any other. The sources and the sink do not change.
//
// # Goroutines
//
// Run starts the controller's goroutines (see delivery), the source or the
// sink, the sampler that times confirmations, and the HTTP server, and
// waits for all of them before it returns, with one exception: the stdin
// source blocked in a read of its input cannot be interrupted, so a stop
// does not wait for it; it returns once its read does, and the process's
// exit ends it. Demo runs both controllers, the generator and the progress
// line, and waits for them.
package bridge
