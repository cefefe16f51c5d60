package bridge

import (
	"context"

	"github.com/bridge-mq/bridge/delivery"
)

// A sink takes the consumer's deliveries and confirms each once it is done
// with it. run returns nil once the consumer has stopped and handed out
// everything it buffered, ctx's error if ctx ends first (the shutdown
// deadline), or why it failed; a message it failed on stays unconfirmed.
type sink interface {
	run(ctx context.Context, c *delivery.ConsumerController[[]byte], m *metrics) error
}
