package tcp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that closing links and listeners leaves no goroutine.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
