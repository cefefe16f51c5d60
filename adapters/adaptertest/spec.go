package adaptertest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Spec is what a carrier's tests hand the suite: the carrier under test,
// how to break its connections, and which properties it claims. The suite
// checks every property claimed.
type Spec struct {
	// Name appears in failure messages.
	Name string

	// Carrier is the carrier under test. The suite opens every link through
	// its OpenLink, with a ctx bounded by Timeout, and fails the test on an
	// error; it closes every link it opens, and leaves the carrier to the
	// caller to close. OpenLink must return once the end can receive (see
	// delivery.Carrier); streams of different names are independent, and
	// opening an end whose previous link was closed attaches to the same
	// stream again: that is how the suite restarts an end.
	Carrier delivery.Carrier

	// Cut breaks the carrier's connections for a stream (a TCP
	// connection, a client's connection to its broker) and returns; the
	// links must notice and reconnect by themselves. Nil if the carrier
	// cannot be cut from a test; the suite then says it skipped the cut
	// tests.
	Cut func(t testing.TB, stream string)

	// Queue: frames sent while no consumer end is attached are kept, and
	// delivered once one is (a broker's queue).
	Queue bool

	// Release: received frames carry a Release, and frames a consumer end
	// did not release when it closed are delivered again to the next one.
	Release bool

	// Inject sends frame to the end to of stream as a stranger would: through
	// the broker (publishing to the stream's subject, queue or topic with a
	// client of its own) or into the connection, so that the links under
	// test receive it among their peer's frames. The hostile tests need it.
	// It must not call t.Fatal (the suite calls it aside from the test's
	// goroutine): t.Error, and go on.
	Inject func(t testing.TB, stream string, to delivery.End, frame []byte)

	// MaxFrameSize is the largest frame the carrier carries; Send refuses a
	// larger one with a *delivery.FrameTooLargeError that says so, and the
	// link stays usable. 0: the carrier has no limit the suite should test.
	MaxFrameSize int

	// NoWorkPulling, when set, says why the carrier, as configured, cannot
	// serve many workers on one stream (tcp where the consumer end
	// listens: each worker would need the address); the suite then checks
	// work pulling nowhere and says why.
	NoWorkPulling string

	// Messages is how many messages each stream test sends. Default 2000;
	// a slow broker may ask for fewer.
	Messages int

	// Timeout bounds each test. Default 2 minutes.
	Timeout time.Duration
}

func (s Spec) messages() int {
	if s.Messages > 0 {
		return s.Messages
	}
	return 2000
}

func (s Spec) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 2 * time.Minute
}

var streamSeq atomic.Uint64

// stream names a fresh stream for one test, unique within the process and,
// with the start time, across runs on a broker that keeps its queues.
func stream(testing.TB) string {
	return fmt.Sprintf("conformance-%d-%d", startedAt, streamSeq.Add(1))
}

var startedAt = time.Now().UnixNano() % 1e9

// Run runs the conformance suite against s.Carrier: raw frames in order in
// both directions, reliable delivery of many and of large chunked
// messages, with headers, many streams side by side, close and reopen, consumer
// restarts, connection cuts, a slow consumer, the claimed Queue, Release
// and MaxFrameSize properties, a sealed stream among strangers' frames
// (see Spec.Inject), and work pulling: workers sharing a stream, killed,
// leaving, joining, all gone and back. Each test uses a stream of its own;
// tests run in parallel.
func Run(t *testing.T, s Spec) {
	if s.Carrier == nil {
		t.Fatal("adaptertest: Spec.Carrier is required")
	}
	tests := []struct {
		name string
		run  func(*testing.T, Spec)
	}{
		{"RawFramesInOrder", testRawFramesInOrder},
		{"RawControlDirection", testRawControlDirection},
		{"Reliable", testReliable},
		{"LargeChunked", testLargeChunked},
		{"Headers", testHeaders},
		{"ManyStreams", testManyStreams},
		{"CloseAndReopen", testCloseAndReopen},
		{"ConsumerRestart", testConsumerRestart},
		{"Cut", testCut},
		{"SlowConsumer", testSlowConsumer},
		{"Queue", testQueue},
		{"Release", testRelease},
		{"FrameTooLarge", testFrameTooLarge},
		{"Hostile", testHostile},
		{"WorkPulling", testWorkPulling},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s)
		})
	}
}
