package delivery_test

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every controller
// waits for the goroutines it starts.
func TestMain(m *testing.M) {
	flag.Parse()
	// The fault tests spend their time waiting on retry timers, not on the
	// CPU: run more of them at once than there are cores, unless the
	// caller chose.
	if f := flag.Lookup("test.parallel"); f != nil && !isFlagSet("test.parallel") {
		f.Value.Set("16")
	}
	goleak.VerifyTestMain(m)
}

func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
