package nats

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Mode says what carries a stream's data frames.
type Mode string

const (
	// ModeCore publishes data frames with core NATS: at most once, nothing
	// kept for an absent consumer, nothing to acknowledge. The protocol
	// resends what is lost. The fastest mode.
	ModeCore Mode = "core"

	// ModeJetStream publishes data frames to a JetStream stream and consumes
	// them with a durable pull consumer: frames wait for an absent consumer
	// and are acknowledged only when the consumer controller releases them.
	ModeJetStream Mode = "jetstream"
)

// Defaults of Config. A zero field takes the default named here.
const (
	DefaultURL              = natsgo.DefaultURL // "nats://127.0.0.1:4222"
	DefaultName             = "bridge"
	DefaultSubjectPrefix    = "bridge"
	DefaultConnectTimeout   = 5 * time.Second
	DefaultReconnectWait    = time.Second
	DefaultReconnectBufSize = 8 << 20

	DefaultStreamPrefix      = "bridge"
	DefaultDurable           = "bridge"
	DefaultDuplicateWindow   = 2 * time.Minute
	DefaultAckWait           = 30 * time.Second
	DefaultMaxAckPending     = 10000
	DefaultPublishAckTimeout = 5 * time.Second
	DefaultMaxPendingFrames  = 4096
	DefaultMaxPendingBytes   = 32 << 20
	DefaultPullMaxBytes      = 8 << 20
)

// maxStreamName bounds a bridge stream's name, so that the JetStream stream
// name built from it stays well under the server's limit.
const maxStreamName = 128

// Config configures a Carrier. The zero value of every field means its
// default; New validates the rest and names the field it rejects.
type Config struct {
	// URL is the NATS server to connect to, or several separated by commas
	// (a cluster). Default DefaultURL. StartServer runs one in-process.
	URL string

	// Name prefixes the client connection names the server shows
	// ("bridge orders producer"). Default DefaultName.
	Name string

	// SubjectPrefix starts every subject the carrier uses: stream s sends
	// data frames on SubjectPrefix.s.data and control frames on
	// SubjectPrefix.s.control. One or more dot-separated tokens without
	// wildcards or spaces. Default DefaultSubjectPrefix.
	SubjectPrefix string

	// Mode is ModeCore (the default) or ModeJetStream. Control frames use
	// core NATS in both modes.
	Mode Mode

	// ConnectTimeout bounds each attempt to reach the server. Default
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration

	// ReconnectWait is the pause between attempts to reconnect to the same
	// server. Default DefaultReconnectWait.
	ReconnectWait time.Duration

	// MaxReconnects is how many consecutive failed reconnect attempts a
	// connection makes before it gives up for good (its links then fail).
	// Default 0: it never gives up.
	MaxReconnects int

	// ReconnectBufSize is how many bytes of publishes a disconnected client
	// keeps to send on reconnect; past it, core-mode Send fails (the
	// protocol resends). -1 keeps none. Default DefaultReconnectBufSize.
	ReconnectBufSize int

	// ClientOptions are extra nats.go options (credentials, TLS, ...),
	// applied after the carrier's own; options that replace the carrier's
	// connection handlers take its logging and counters away.
	ClientOptions []natsgo.Option

	// JetStream configures ModeJetStream; ignored in ModeCore.
	JetStream JetStreamConfig

	// Logger receives the carrier's logs: connections lost and regained,
	// slow consumers, publishes resent. Default: none.
	Logger *slog.Logger
}

// JetStreamConfig configures the JetStream stream and durable consumer each
// bridge stream gets, and the carrier's use of them. Stream and consumer
// are created when a link first needs them; an existing one is used as it
// is, so change the settings of an existing one with the nats CLI (or
// delete it) rather than here.
type JetStreamConfig struct {
	// StreamPrefix names JetStream streams: bridge stream s is stored in the
	// JetStream stream StreamPrefix_s. Letters, digits, '-' and '_'.
	// Default DefaultStreamPrefix.
	StreamPrefix string

	// Durable names the durable pull consumer of each JetStream stream.
	// Letters, digits, '-' and '_'. Default DefaultDurable.
	Durable string

	// Storage is jetstream.FileStorage (the default) or
	// jetstream.MemoryStorage. A memory stream does not survive a server
	// restart: the carrier creates it again and the protocol resends what it
	// held.
	Storage jetstream.StorageType

	// Replicas is the stream's replica count in a cluster. Default 1.
	Replicas int

	// MaxAge discards frames older than this. Default 0: kept until acked
	// (the stream has work-queue retention).
	MaxAge time.Duration

	// MaxBytes bounds the stream's size; past it the oldest frames are
	// discarded and the protocol resends what they carried. Default 0:
	// unbounded.
	MaxBytes int64

	// DuplicateWindow is how long the server remembers a frame's
	// Nats-Msg-Id to drop a resent copy. Default DefaultDuplicateWindow.
	DuplicateWindow time.Duration

	// AckWait is how long the server waits for a delivered frame's ack
	// before delivering it again. The consumer end keeps frames it holds
	// alive (in-progress acks) and naks what it holds when closed, so this
	// only matters when a consumer end dies without closing. Default
	// DefaultAckWait.
	AckWait time.Duration

	// MaxAckPending bounds the frames delivered and not yet acked; the
	// server delivers no more until some are. It should exceed the
	// consumer's window. Default DefaultMaxAckPending.
	MaxAckPending int

	// PublishAckTimeout is how long the producer end waits for the server to
	// acknowledge a publish before it publishes the frame again (with the
	// same Nats-Msg-Id, so the server drops a copy it has). Default
	// DefaultPublishAckTimeout.
	PublishAckTimeout time.Duration

	// MaxPendingFrames and MaxPendingBytes bound the frames published and
	// not yet acknowledged by the server; Send waits for room beyond them.
	// Defaults DefaultMaxPendingFrames, DefaultMaxPendingBytes.
	MaxPendingFrames int
	MaxPendingBytes  int

	// PullMaxBytes bounds the bytes the consumer end asks the server for
	// ahead of Receive. At least the server's max_payload. Default
	// DefaultPullMaxBytes.
	PullMaxBytes int

	// EditStream and EditConsumer, when set, may change the configuration
	// of a stream or consumer the carrier is about to create, after the
	// fields above were applied (for example Retention, Discard,
	// MaxMsgSize or Placement). Name, subjects, durable name, filter
	// subject and ack policy must stay as they are.
	EditStream   func(*jetstream.StreamConfig)
	EditConsumer func(*jetstream.ConsumerConfig)
}

// ConfigError names a configuration field New or StartServer rejected.
// Not worth retrying with the same configuration.
type ConfigError struct {
	Field  string // such as "JetStream.AckWait"
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("nats: invalid configuration %s=%v: %s", e.Field, e.Value, e.Reason)
}

func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if err := validSubjectPrefix(c.SubjectPrefix); err != nil {
		return c, &ConfigError{Field: "SubjectPrefix", Value: c.SubjectPrefix, Reason: err.Error()}
	}
	switch c.Mode {
	case "":
		c.Mode = ModeCore
	case ModeCore, ModeJetStream:
	default:
		return c, &ConfigError{Field: "Mode", Value: c.Mode, Reason: `"core" or "jetstream"`}
	}
	var err error
	if c.ConnectTimeout, err = positiveDuration("ConnectTimeout", c.ConnectTimeout, DefaultConnectTimeout); err != nil {
		return c, err
	}
	if c.ReconnectWait, err = positiveDuration("ReconnectWait", c.ReconnectWait, DefaultReconnectWait); err != nil {
		return c, err
	}
	if c.MaxReconnects < 0 {
		return c, &ConfigError{Field: "MaxReconnects", Value: c.MaxReconnects, Reason: "must not be negative (0 never gives up)"}
	}
	switch {
	case c.ReconnectBufSize == 0:
		c.ReconnectBufSize = DefaultReconnectBufSize
	case c.ReconnectBufSize < -1:
		return c, &ConfigError{Field: "ReconnectBufSize", Value: c.ReconnectBufSize, Reason: "a size in bytes, or -1 for none"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Mode == ModeJetStream {
		if c.JetStream, err = c.JetStream.withDefaults(); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (j JetStreamConfig) withDefaults() (JetStreamConfig, error) {
	if j.StreamPrefix == "" {
		j.StreamPrefix = DefaultStreamPrefix
	}
	if !validName(j.StreamPrefix, 64) {
		return j, &ConfigError{Field: "JetStream.StreamPrefix", Value: j.StreamPrefix, Reason: "1 to 64 letters, digits, '-' or '_'"}
	}
	if j.Durable == "" {
		j.Durable = DefaultDurable
	}
	if !validName(j.Durable, 64) {
		return j, &ConfigError{Field: "JetStream.Durable", Value: j.Durable, Reason: "1 to 64 letters, digits, '-' or '_'"}
	}
	switch j.Storage {
	case jetstream.FileStorage, jetstream.MemoryStorage:
	default:
		return j, &ConfigError{Field: "JetStream.Storage", Value: j.Storage, Reason: "jetstream.FileStorage or jetstream.MemoryStorage"}
	}
	switch {
	case j.Replicas == 0:
		j.Replicas = 1
	case j.Replicas < 0 || j.Replicas > 5:
		return j, &ConfigError{Field: "JetStream.Replicas", Value: j.Replicas, Reason: "1 to 5"}
	}
	if j.MaxAge < 0 {
		return j, &ConfigError{Field: "JetStream.MaxAge", Value: j.MaxAge, Reason: "must not be negative (0: no limit)"}
	}
	if j.MaxBytes < 0 {
		return j, &ConfigError{Field: "JetStream.MaxBytes", Value: j.MaxBytes, Reason: "must not be negative (0: no limit)"}
	}
	var err error
	if j.DuplicateWindow, err = positiveDuration("JetStream.DuplicateWindow", j.DuplicateWindow, DefaultDuplicateWindow); err != nil {
		return j, err
	}
	if j.AckWait, err = positiveDuration("JetStream.AckWait", j.AckWait, DefaultAckWait); err != nil {
		return j, err
	}
	if j.PublishAckTimeout, err = positiveDuration("JetStream.PublishAckTimeout", j.PublishAckTimeout, DefaultPublishAckTimeout); err != nil {
		return j, err
	}
	if j.MaxAckPending, err = positiveInt("JetStream.MaxAckPending", j.MaxAckPending, DefaultMaxAckPending); err != nil {
		return j, err
	}
	if j.MaxPendingFrames, err = positiveInt("JetStream.MaxPendingFrames", j.MaxPendingFrames, DefaultMaxPendingFrames); err != nil {
		return j, err
	}
	if j.MaxPendingBytes, err = positiveInt("JetStream.MaxPendingBytes", j.MaxPendingBytes, DefaultMaxPendingBytes); err != nil {
		return j, err
	}
	if j.PullMaxBytes, err = positiveInt("JetStream.PullMaxBytes", j.PullMaxBytes, DefaultPullMaxBytes); err != nil {
		return j, err
	}
	return j, nil
}

func positiveDuration(field string, v, def time.Duration) (time.Duration, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0:
		return v, &ConfigError{Field: field, Value: v, Reason: "must be positive"}
	}
	return v, nil
}

func positiveInt(field string, v, def int) (int, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0:
		return v, &ConfigError{Field: field, Value: v, Reason: "must be positive"}
	}
	return v, nil
}

// validName reports whether s is 1 to max letters, digits, '-' or '_': a
// valid subject token and a valid JetStream stream or consumer name.
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

func validSubjectPrefix(p string) error {
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return fmt.Errorf("empty token")
		}
		if strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("token %q holds a wildcard or a space", tok)
		}
	}
	return nil
}

// StreamNameError is returned by Link for a stream name that cannot be
// part of a subject and a JetStream stream name. Not worth retrying.
type StreamNameError struct {
	Stream string
}

func (e *StreamNameError) Error() string {
	return fmt.Sprintf("nats: invalid stream name %q: 1 to %d letters, digits, '-' or '_'", e.Stream, maxStreamName)
}

// names are the subjects and JetStream names of one bridge stream.
type names struct {
	data, control string // subjects
	jsStream      string // JetStream stream name (ModeJetStream)
}

func (c *Config) names(stream string) names {
	return names{
		data:     c.SubjectPrefix + "." + stream + ".data",
		control:  c.SubjectPrefix + "." + stream + ".control",
		jsStream: c.JetStream.StreamPrefix + "_" + stream,
	}
}
