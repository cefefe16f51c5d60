// Package bench is `bridge bench`: one workload over every carrier, in this
// process, each in two modes on the same broker: raw, the carrier's own
// client with its strongest delivery settings and no protocol, and
// reliable, the protocol over the service's carrier, opened through the
// service's carrier registry (bridge.OpenCarrier) exactly as `bridge run`
// opens it. With BRIDGE_BENCH_DURABLE a third mode adds the durable producer
// queue.
//
// The count of each run is split into rounds and the modes take turns, so
// that a change in a shared machine's load weighs on all of them alike; the
// figure to compare is the ratio reliable/raw of one run. What each raw
// client is, and why it is a fair baseline, is in docs/bench.md.
//
// It measures; package report writes what it measured (a table, JSON, an
// HTML page). The workload's messages and tally are shared with the demo.
//
// # Goroutines
//
// Run measures one mode at a time: a sender feeds the mode's pipe, the
// pipe's receiving side counts, a progress line follows them, and a heap
// sampler watches the round; each stops before the next round starts, and
// Run waits for all of them.
package bench
