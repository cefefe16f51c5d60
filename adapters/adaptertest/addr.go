package adaptertest

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a server a test starts later (or for nothing to answer at).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
