package tcp

import (
	"fmt"
	"net"
	"unicode/utf8"

	"github.com/bridge-mq/bridge/delivery"
)

// The checks of the arguments of Dial, Listener.Link and New, before any
// I/O.

// checkStream refuses a name the handshake cannot carry.
func checkStream(stream string) error {
	if stream == "" || len(stream) > maxStreamLen || !utf8.ValidString(stream) {
		return fmt.Errorf("tcp: stream name %q: want 1 to 255 bytes of UTF-8", stream)
	}
	return nil
}

// checkEnd refuses an end that is neither the producer's nor the
// consumer's; op names the call, for the error.
func checkEnd(op string, end delivery.End) error {
	if end != delivery.ProducerEnd && end != delivery.ConsumerEnd {
		return fmt.Errorf("tcp: %s: unknown end %v", op, end)
	}
	return nil
}

// checkAddr refuses an address that is not host:port.
func checkAddr(op, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("tcp: %s: address %q: %w", op, addr, err)
	}
	return nil
}
