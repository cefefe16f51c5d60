// Package memory is an in-process carrier for the delivery protocol, made
// for tests: a Pipe joins a producer end and a consumer end, and can lose,
// duplicate, reorder and delay frames, and be cut and restored, all driven
// by a seed so a failing run can be replayed. With Options.Queue it behaves
// like a broker's queue (frames wait for a receiver, carry a release, and
// come back if not released), so the consumer's release logic can be tested
// without a broker.
//
// A Carrier (NewCarrier) is the package's delivery.Carrier: it gives each
// stream a Pipe of its own, made on first use with the carrier's Options,
// and its Link attaches an end of that pipe; Carrier.Pipe hands a test the
// pipe to cut, restore or read. Closing the carrier closes every pipe.
//
// Neither a Pipe nor a Carrier starts goroutines; Send and Receive do their
// work in the caller's.
//
// Work pulling runs on it as on any carrier: each worker's stream is a pipe
// of its own, and workers say hello through the stream's pipe, taking turns
// at its consumer end (a new link of an end closes the last).
package memory
