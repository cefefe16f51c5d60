// Package bridge is the service: it runs one end of a reliable delivery
// stream (Run), both ends for a trial (Demo), over the transport its
// configuration names, with the carriers in adapters/ and the protocol in
// delivery/.
//
// # Configuration
//
// Only the command reads the environment, through LoadConfig: every
// BRIDGE_* variable maps to a field of Config, whose tags give its name,
// default and meaning (PrintEnv lists them, as `bridge env` does). LoadConfig
// reports a value that does not parse and a BRIDGE_ variable nobody reads;
// ValidateRun and ValidateDemo check that the values fit together. Every
// problem is a *ConfigError naming its variable, and they come all at once.
//
// # One end
//
// A producer takes messages from its source (stdin, HTTP, a generator) and
// hands them to a delivery.ProducerController, with a durable queue in
// BRIDGE_DURABLE_DIR if set; a consumer takes deliveries from a
// delivery.ConsumerController and hands them to its sink (stdout, an HTTP
// webhook), confirming each once the sink is done with it. Both serve
// /healthz, /readyz and /metrics on BRIDGE_HTTP_ADDR; the HTTP source adds
// POST /v1/messages. Run's context ending is the graceful stop SIGINT and
// SIGTERM ask for: the producer takes no more and waits for confirmations,
// the consumer hands out what it buffered, both for up to
// BRIDGE_SHUTDOWN_TIMEOUT.
//
// # Goroutines
//
// Run starts the controllers' goroutines (see delivery), one for the
// source or the sink, one that samples latency, and the HTTP server's; it
// waits for all of them before it returns.
package bridge
