package kafka

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by Carrier.Link once the carrier has been closed.
// Not worth retrying on the same carrier.
var ErrClosed = errors.New("kafka: carrier closed")

// ConfigError names a Config field that New rejected and why. Not worth
// retrying with the same configuration.
type ConfigError struct {
	Field  string // the field name, such as "Brokers" or "SASL.Mechanism"
	Value  any    // the rejected value (passwords are not repeated)
	Reason string // what a valid value looks like
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("kafka: invalid Config.%s %v: %s", e.Field, e.Value, e.Reason)
}

// StreamNameError is returned by Carrier.Link for a stream name that cannot
// name a Kafka topic. Not worth retrying with the same name.
type StreamNameError struct {
	Stream string
	Reason string
}

func (e *StreamNameError) Error() string {
	return fmt.Sprintf("kafka: stream name %q: %s", e.Stream, e.Reason)
}

// TopicError is returned by Carrier.Link when a stream's topic is missing and
// could not be created, or cannot be used. Err tells why; whether retrying
// helps depends on it (a broker that is still starting: yes; a denied
// authorization: no).
type TopicError struct {
	Topic string
	Err   error
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("kafka: topic %q: %v", e.Topic, e.Err)
}

func (e *TopicError) Unwrap() error { return e.Err }
