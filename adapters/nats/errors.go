package nats

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sentinel errors: states, compared with errors.Is.
var (
	// ErrClosed is returned by Link and DeleteStream on a closed Carrier.
	// Not worth retrying on the same Carrier.
	ErrClosed = errors.New("nats: carrier closed")

	// ErrConnectionLost is returned by a link's Send and Receive once its
	// connection gave up reconnecting (Config.MaxReconnects) or was closed
	// under it. Not worth retrying on the same link; open a new one.
	ErrConnectionLost = errors.New("nats: connection lost for good")

	// ErrJetStreamUnavailable is returned by New in ModeJetStream when the
	// server has no JetStream for the account. Worth retrying only once the
	// server runs with JetStream.
	ErrJetStreamUnavailable = errors.New("nats: jetstream not available")
)

// ConnectError is returned by New and Link when the server cannot be
// reached. Worth retrying once the server is up.
type ConnectError struct {
	URL string // the configured URL, passwords redacted
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("nats: cannot connect to %s: %v", e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// redactURL hides the passwords and tokens in a comma-separated list of
// server URLs, for logs and errors.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
