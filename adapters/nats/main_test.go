package nats_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that closing links, carriers and embedded servers leaves
// no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
