package amqp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the carrier starts (and amqp091-go's, per connection and
// consumer) is gone once the tests have closed their carriers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
