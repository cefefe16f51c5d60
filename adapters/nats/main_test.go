package nats_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that closing links, carriers and embedded servers leaves
// no goroutine behind. Two of nats-server's own background loops may
// outlive a server's WaitForShutdown by a moment (seen once in a full run:
// the access-time ticker, and a stream's state flusher whose store was
// being closed); they are ignored. A server not shut down would leave its
// accept loop and its clients' goroutines, which are not.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"))
}
