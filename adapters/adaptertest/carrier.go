package adaptertest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// Carrier is what a carrier's tests hand the suite: how to open links on
// the carrier under test, how to break its connections, and which
// properties it claims. The suite checks every property claimed.
type Carrier struct {
	// Name appears in failure messages.
	Name string

	// Open returns a link for one end of a stream. It must return once the
	// end can receive: a frame the other end sends after Open returned is
	// not lost for want of a receiver. Streams of different names are
	// independent. Opening an end whose previous link was closed attaches to
	// the same stream again: that is how the suite restarts an end. The
	// suite closes every link it opens.
	Open func(t testing.TB, stream string, end delivery.End) delivery.Link

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

	// MaxFrameSize is the largest frame the carrier carries; Send refuses a
	// larger one with an error and the link stays usable. 0: the carrier
	// has no limit the suite should test.
	MaxFrameSize int

	// Messages is how many messages each stream test sends. Default 2000;
	// a slow broker may ask for fewer.
	Messages int

	// Timeout bounds each test. Default 2 minutes.
	Timeout time.Duration
}

func (c Carrier) messages() int {
	if c.Messages > 0 {
		return c.Messages
	}
	return 2000
}

func (c Carrier) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
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

// Run runs the conformance suite against c: raw frames in order in both
// directions, reliable delivery of many and of large chunked messages, many
// streams side by side, close and reopen, consumer restarts, connection
// cuts, a slow consumer, and the claimed Queue, Release and MaxFrameSize
// properties. Each test uses a stream of its own; tests run in parallel.
func Run(t *testing.T, c Carrier) {
	if c.Open == nil {
		t.Fatal("adaptertest: Carrier.Open is required")
	}
	tests := []struct {
		name string
		run  func(*testing.T, Carrier)
	}{
		{"RawFramesInOrder", testRawFramesInOrder},
		{"RawControlDirection", testRawControlDirection},
		{"Reliable", testReliable},
		{"LargeChunked", testLargeChunked},
		{"ManyStreams", testManyStreams},
		{"CloseAndReopen", testCloseAndReopen},
		{"ConsumerRestart", testConsumerRestart},
		{"Cut", testCut},
		{"SlowConsumer", testSlowConsumer},
		{"Queue", testQueue},
		{"Release", testRelease},
		{"FrameTooLarge", testFrameTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, c)
		})
	}
}
