package kafka

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-mq/bridge/delivery/backoff"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// StreamPlaceholder is replaced by the stream's name in Config.DataTopic,
// Config.ControlTopic and Config.GroupID.
const StreamPlaceholder = "{stream}"

// Defaults of Config. A zero field takes the default named here.
const (
	DefaultDataTopic    = "bridge." + StreamPlaceholder + ".data"
	DefaultControlTopic = "bridge." + StreamPlaceholder + ".control"
	DefaultGroupID      = "bridge." + StreamPlaceholder

	// DefaultMaxMessageBytes is Kafka's own default for the broker's
	// message.max.bytes and a topic's max.message.bytes: the largest record
	// batch a broker takes.
	DefaultMaxMessageBytes = 1048588

	DefaultSendBufferBytes = 8 << 20
	DefaultFetchMaxWait    = 500 * time.Millisecond
	DefaultCommitInterval  = 100 * time.Millisecond
	DefaultRequestTimeout  = 10 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	DefaultRetryBackoff    = time.Second
	DefaultCloseTimeout    = 5 * time.Second
	DefaultClientID        = "bridge"

	// recordOverhead is what Kafka adds around a frame it stores alone: a
	// record batch header (61 bytes) and a record's own fields (at most 28),
	// rounded up generously so a frame under the limit is never refused.
	recordOverhead = 512
	// minMaxMessageBytes leaves frames of at least 1 KiB, the least the
	// protocol works with.
	minMaxMessageBytes = 2048
	// firstRetryBackoff is the wait before the second attempt of a failed
	// write or commit; it doubles up to Config.RetryBackoff.
	firstRetryBackoff = 50 * time.Millisecond
)

// ReaderRedialBackoff is the wait before a link's kafka-go Reader dials
// again after dropping its connection, the least of its backoff (which
// grows with the square of the attempt up to Config.RetryBackoff, so a
// broker that is down is not dialled in a tight loop).
//
// A Reader drops its connection far more often than a broker fails. A fetch
// answer can report a high watermark equal to the fetch offset and still
// carry records: the broker reads its high watermark before a produce moves
// it, then the log. kafka-go (v0.4.51) takes such an answer as empty, leaves
// its records unread on the connection, finds the connection garbled at the
// next fetch ("multiple Read calls return no data or error") and dials
// again; the records are fetched again on the new connection, so nothing is
// lost, but the stream waits for the redial. With kafka-go's default of
// 100 ms (50 ms here until 2026-12-04), that happened every second or two at
// 10,000 msgs/s on one broker and set the tail: p99 from produce to receipt
// of a frame was 43 ms; with 1 ms it is 4 to 6 ms, the broker's own pauses.
const ReaderRedialBackoff = time.Millisecond

// Config configures a Carrier. The zero value of every field but Brokers
// means its default. New validates it and names the field of a bad value.
type Config struct {
	// Brokers are the bootstrap brokers, as host:port. Required.
	Brokers []string

	// DataTopic names the topic that carries a stream's data frames, from
	// the producer end to the consumer end. StreamPlaceholder in it is
	// replaced by the stream's name; it must appear, since every stream has
	// topics of its own. Default DefaultDataTopic, "bridge.{stream}.data".
	DataTopic string

	// ControlTopic names the topic that carries a stream's control frames,
	// from the consumer end back to the producer end. Must contain
	// StreamPlaceholder and differ from DataTopic. Default
	// DefaultControlTopic, "bridge.{stream}.control".
	ControlTopic string

	// GroupID is the consumer group under which a consumer end commits its
	// offsets in the data topic. StreamPlaceholder in it, if any, is replaced
	// by the stream's name. The carrier commits as a simple consumer (no
	// group membership, see the package documentation), so streams may share
	// a group. Default DefaultGroupID, "bridge.{stream}".
	GroupID string

	// ReplicationFactor is given to the topics the carrier creates. Default:
	// the broker's default.replication.factor.
	ReplicationFactor int

	// MaxMessageBytes is the largest record batch the broker takes
	// (message.max.bytes on the broker, max.message.bytes on a topic). A
	// link lowers it to its data topic's max.message.bytes when the broker
	// tells it. Frames are limited to it less 512 bytes of record overhead.
	// At least 2048. Default DefaultMaxMessageBytes, Kafka's own default.
	MaxMessageBytes int

	// BatchTimeout is how long a frame waits for more frames to share its
	// produce request while no request of its link is in flight. Frames
	// queued behind a request in flight go together in the next one anyway,
	// so this only trades latency for fewer, larger requests on a link that
	// is busy but not saturated. Default 0: no wait.
	BatchTimeout time.Duration

	// SendBufferBytes bounds the frames a link holds that the broker has not
	// yet acknowledged; Send blocks while it is full (a frame larger than
	// the whole buffer is taken once the buffer is empty). Default
	// DefaultSendBufferBytes, 8 MiB.
	SendBufferBytes int

	// FetchMaxWait is the longest a fetch waits at the broker for new
	// frames before it answers empty. It also bounds how long a silently
	// dead connection goes unnoticed by a reading link. Default
	// DefaultFetchMaxWait, 500 ms.
	FetchMaxWait time.Duration

	// CommitInterval is the least time between two offset commits of a
	// consumer end. Released frames not yet committed when a consumer end
	// dies come again to the next one (the protocol drops them as
	// duplicates). Default DefaultCommitInterval, 100 ms.
	CommitInterval time.Duration

	// RequestTimeout bounds each produce, commit and admin request.
	// Default DefaultRequestTimeout, 10 s.
	RequestTimeout time.Duration

	// DialTimeout bounds opening a connection, TLS and SASL included.
	// Default DefaultDialTimeout, 5 s.
	DialTimeout time.Duration

	// RetryBackoff is the longest wait between two attempts of a failed
	// write or commit; attempts start 50 ms apart and the wait doubles up to
	// this. Default DefaultRetryBackoff, 1 s.
	RetryBackoff time.Duration

	// CloseTimeout bounds how long Link.Close spends writing the frames Send
	// already took and committing the offsets already released. Default
	// DefaultCloseTimeout, 5 s.
	CloseTimeout time.Duration

	// ClientID is the client.id the brokers see. Default DefaultClientID,
	// "bridge".
	ClientID string

	// TLS, when not nil, makes every connection use TLS with this
	// configuration (its ServerName defaults to the broker's host). Default:
	// plaintext.
	TLS *tls.Config

	// SASL authenticates every connection. Default: no authentication.
	SASL SASL

	// Logger receives the carrier's logs: reconnects, retried writes,
	// offset resets. Default: none.
	Logger *slog.Logger
}

// SASL is the authentication of Config.SASL.
type SASL struct {
	// Mechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512" (any case).
	// Empty: no SASL. PLAIN sends the password as it is: use it with TLS.
	Mechanism string
	// Username and Password are required with a Mechanism.
	Username string
	Password string
}

// The SASL mechanisms Config.SASL accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// withDefaults returns c with its defaults filled in, or the first invalid
// field.
func (c Config) withDefaults() (Config, error) {
	if len(c.Brokers) == 0 {
		return c, &ConfigError{Field: "Brokers", Value: c.Brokers, Reason: "required: at least one host:port"}
	}
	c.Brokers = append([]string(nil), c.Brokers...)
	for i, b := range c.Brokers {
		c.Brokers[i] = strings.TrimSpace(b)
		if err := checkHostPort(c.Brokers[i]); err != nil {
			return c, &ConfigError{Field: "Brokers", Value: b, Reason: err.Error()}
		}
	}
	var err error
	if c.DataTopic, err = topicPattern("DataTopic", c.DataTopic, DefaultDataTopic); err != nil {
		return c, err
	}
	if c.ControlTopic, err = topicPattern("ControlTopic", c.ControlTopic, DefaultControlTopic); err != nil {
		return c, err
	}
	if c.DataTopic == c.ControlTopic {
		return c, &ConfigError{Field: "ControlTopic", Value: c.ControlTopic, Reason: "must differ from DataTopic"}
	}
	if c.GroupID == "" {
		c.GroupID = DefaultGroupID
	}
	if c.ReplicationFactor < 0 || c.ReplicationFactor > 32767 {
		return c, &ConfigError{Field: "ReplicationFactor", Value: c.ReplicationFactor, Reason: "0 (the broker's default) to 32767"}
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1 // asks the broker for its default (KIP-464)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxMessageBytes < minMaxMessageBytes {
		return c, &ConfigError{Field: "MaxMessageBytes", Value: c.MaxMessageBytes, Reason: "at least 2048"}
	}
	if c.BatchTimeout < 0 {
		return c, &ConfigError{Field: "BatchTimeout", Value: c.BatchTimeout, Reason: "not negative"}
	}
	if c.SendBufferBytes == 0 {
		c.SendBufferBytes = DefaultSendBufferBytes
	}
	if c.SendBufferBytes < 0 {
		return c, &ConfigError{Field: "SendBufferBytes", Value: c.SendBufferBytes, Reason: "positive"}
	}
	durations := []struct {
		name  string
		field *time.Duration
		def   time.Duration
		least time.Duration
	}{
		{"FetchMaxWait", &c.FetchMaxWait, DefaultFetchMaxWait, time.Millisecond},
		{"CommitInterval", &c.CommitInterval, DefaultCommitInterval, 0},
		{"RequestTimeout", &c.RequestTimeout, DefaultRequestTimeout, 10 * time.Millisecond},
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout, 10 * time.Millisecond},
		{"RetryBackoff", &c.RetryBackoff, DefaultRetryBackoff, firstRetryBackoff},
		{"CloseTimeout", &c.CloseTimeout, DefaultCloseTimeout, 0},
	}
	for _, d := range durations {
		if *d.field == 0 {
			*d.field = d.def
		}
		if *d.field < d.least || *d.field < 0 {
			return c, &ConfigError{Field: d.name, Value: *d.field, Reason: "at least " + d.least.String()}
		}
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if _, err := c.SASL.mechanism(); err != nil {
		return c, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errString("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errString("the port must be a number from 1 to 65535")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// topicPattern checks a topic name pattern: it must hold StreamPlaceholder
// and make a valid topic name of a valid stream name.
func topicPattern(field, pattern, def string) (string, error) {
	if pattern == "" {
		return def, nil
	}
	if !strings.Contains(pattern, StreamPlaceholder) {
		return pattern, &ConfigError{Field: field, Value: pattern, Reason: "must contain " + StreamPlaceholder + ": each stream has topics of its own"}
	}
	if reason := topicNameProblem(strings.ReplaceAll(pattern, StreamPlaceholder, "s")); reason != "" {
		return pattern, &ConfigError{Field: field, Value: pattern, Reason: reason}
	}
	return pattern, nil
}

// maxTopicName is Kafka's limit on a topic name's length.
const maxTopicName = 249

// topicNameProblem says what is wrong with a topic name, or "" if nothing.
func topicNameProblem(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return "not a valid topic name"
	case len(name) > maxTopicName:
		return "a topic name has at most 249 characters"
	}
	for _, r := range name {
		if !legalTopicRune(r) {
			return "a topic name uses only ASCII letters, digits, '.', '_' and '-'"
		}
	}
	return ""
}

func legalTopicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// mechanism builds the SASL mechanism, nil for none.
func (s SASL) mechanism() (sasl.Mechanism, error) {
	name := strings.ToUpper(strings.TrimSpace(s.Mechanism))
	if name == "" {
		if s.Username != "" || s.Password != "" {
			return nil, &ConfigError{Field: "SASL.Mechanism", Value: `""`, Reason: "required with SASL.Username or SASL.Password: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}
		}
		return nil, nil
	}
	if s.Username == "" {
		return nil, &ConfigError{Field: "SASL.Username", Value: `""`, Reason: "required with SASL.Mechanism " + name}
	}
	if s.Password == "" {
		return nil, &ConfigError{Field: "SASL.Password", Value: `""`, Reason: "required with SASL.Mechanism " + name}
	}
	switch name {
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case SASLScramSHA256:
		return scramMechanism(scram.SHA256, s)
	case SASLScramSHA512:
		return scramMechanism(scram.SHA512, s)
	}
	return nil, &ConfigError{Field: "SASL.Mechanism", Value: s.Mechanism, Reason: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}
}

func scramMechanism(algo scram.Algorithm, s SASL) (sasl.Mechanism, error) {
	m, err := scram.Mechanism(algo, s.Username, s.Password)
	if err != nil {
		// The username or password does not survive SASLprep.
		return nil, &ConfigError{Field: "SASL.Username", Value: s.Username, Reason: "not usable with SCRAM: " + err.Error()}
	}
	return m, nil
}

// streamNames returns the topics and group of a stream, or why the stream's
// name cannot make them.
func (c *Config) streamNames(stream string) (data, control, group string, err error) {
	if stream == "" {
		return "", "", "", &StreamNameError{Stream: stream, Reason: "empty"}
	}
	for _, r := range stream {
		if !legalTopicRune(r) {
			return "", "", "", &StreamNameError{Stream: stream, Reason: "a stream name uses only ASCII letters, digits, '.', '_' and '-', as it names Kafka topics"}
		}
	}
	data = strings.ReplaceAll(c.DataTopic, StreamPlaceholder, stream)
	control = strings.ReplaceAll(c.ControlTopic, StreamPlaceholder, stream)
	for _, t := range []string{data, control} {
		if reason := topicNameProblem(t); reason != "" {
			return "", "", "", &StreamNameError{Stream: stream, Reason: "topic " + t + ": " + reason}
		}
	}
	group = strings.ReplaceAll(c.GroupID, StreamPlaceholder, stream)
	return data, control, group, nil
}

// retryWaits spaces the attempts of a failed write or commit: from
// firstRetryBackoff, doubling up to RetryBackoff.
func (c *Config) retryWaits() *backoff.Backoff {
	return backoff.New(backoff.Policy{Min: firstRetryBackoff, Max: c.RetryBackoff})
}

// SASLMechanism is kafka-go's mechanism for c.SASL, nil for none: for a
// client of one's own (the bench's raw client) that authenticates as the
// carrier does. A bad SASL is a *ConfigError.
func (c Config) SASLMechanism() (sasl.Mechanism, error) { return c.SASL.mechanism() }
