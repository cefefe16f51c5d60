package adaptertest

import (
	"os"
	"testing"
)

// RequireBrokersVar, set to 1, makes tests that need a broker fail rather
// than skip when it is missing: CI sets it, so nothing is skipped there.
const RequireBrokersVar = "BRIDGE_TEST_REQUIRE_BROKERS"

// BrokersRequired reports whether RequireBrokersVar is 1.
func BrokersRequired() bool { return os.Getenv(RequireBrokersVar) == "1" }

// BrokerUnavailable skips t saying why, or fails it when brokers are
// required.
func BrokerUnavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if BrokersRequired() {
		t.Fatalf(format+" ("+RequireBrokersVar+"=1)", args...)
	}
	t.Skipf(format+" (set "+RequireBrokersVar+"=1 to fail instead)", args...)
}
