// Package durable is the producer's durable queue on disk: a
// delivery.DurableQueue in one bbolt file (go.etcd.io/bbolt, an embedded,
// crash-safe copy-on-write B+tree; no file format of our own).
//
// A producer controller given a Queue (ProducerSettings.DurableQueue)
// stores every message before it sends it and every confirmation as it
// advances, gathering all that came since the last sync into one
// transaction and one fsync, so throughput is not one message per sync. A
// producer killed with SIGKILL and restarted on the same file resends what
// was not confirmed, from the oldest, and numbers on from there: the
// consumer gets every message at least once, in order.
//
// Open refuses a file it cannot read (not a bbolt file, not a producer
// queue, cut short, a checksum that fails) with ErrCorrupt, and a file
// another live producer holds with ErrLocked, both naming the file; it
// never starts empty on a file it could not read.
//
// A Queue starts no goroutines; the controller calls it from one goroutine
// of its own so that syncs never hold up the protocol.
package durable
