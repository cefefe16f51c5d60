package amqp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
)

// Defaults of Config. A zero field takes the default named here.
const (
	// DefaultURL is the broker of a local RabbitMQ installation.
	DefaultURL = "amqp://guest:guest@localhost:5672/"
	// DefaultName prefixes the names the connections show in the broker's
	// management tools.
	DefaultName = "bridge"
	// DefaultQueuePrefix prefixes every queue name.
	DefaultQueuePrefix = "bridge."
	// DefaultPrefetch is the consumer prefetch: the protocol's default
	// window, so the broker never holds back a frame the consumer
	// controller is entitled to (see Config.Prefetch).
	DefaultPrefetch = delivery.DefaultWindow
	// DefaultMaxPendingConfirms bounds the frames a link has published and
	// the broker has not confirmed yet.
	DefaultMaxPendingConfirms = 256
	// DefaultMaxFrameSize is RabbitMQ's default max_message_size (128 MiB).
	DefaultMaxFrameSize = 128 << 20
	// DefaultDialTimeout bounds one connection attempt: TCP, TLS and the
	// AMQP handshake.
	DefaultDialTimeout = 10 * time.Second
	// DefaultHeartbeat is the AMQP heartbeat interval asked of the broker;
	// a connection that hears nothing for two of them is taken for dead.
	DefaultHeartbeat = 10 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the wait between
	// attempts to reconnect or to reopen a channel; it doubles after each
	// failure.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
)

// maxFrameSizeLimit is the largest message RabbitMQ can be configured to
// accept (max_message_size may not exceed 512 MiB).
const maxFrameSizeLimit = 512 << 20

// Config configures a Carrier. The zero value connects to DefaultURL with
// every default.
type Config struct {
	// URL is the broker's AMQP URI (amqp:// or amqps://), credentials and
	// virtual host included. Default DefaultURL.
	URL string

	// TLS configures amqps:// connections. Default: derived from the URL
	// (the system roots, the URL's host as server name).
	TLS *tls.Config

	// Name prefixes the connection names the broker shows
	// ("<Name> publish" and "<Name> consume"), so an operator can find, and
	// close, this carrier's connections. Default DefaultName.
	Name string

	// QueuePrefix prefixes the queue names: a stream S uses the queues
	// "<QueuePrefix>S.data" (producer to consumer) and
	// "<QueuePrefix>S.control" (consumer to producer). It may not start
	// with "amq." (reserved by the broker). Default DefaultQueuePrefix.
	QueuePrefix string

	// Exchange is the exchange frames are published to, with the queue's
	// name as routing key. Default "": the default exchange, which routes
	// to the queue of that name with no binding. When set, the carrier
	// declares it as a durable direct exchange and binds each queue to it
	// under the queue's name (unless Passive).
	Exchange string

	// Passive makes the carrier only check that the exchange and queues
	// exist (passive declarations) instead of declaring them, for brokers
	// whose topology the operator manages (a user without the configure
	// permission). The queues must then be durable, with Exchange bound to
	// them under their names. A missing queue is an error: Link fails,
	// Send returns an *UnroutableError or a *DeclareError until it is
	// back. Default false: the carrier declares everything on Link and
	// again after every reconnect or server-side cancel.
	Passive bool

	// QueueType is the x-queue-type of the queues the carrier declares:
	// "classic" or "quorum". Default "": the broker's default (classic).
	// Streams ("stream") cannot be consumed with acks and are refused.
	QueueType string

	// Prefetch is the consumer prefetch (basic.qos) on both queues: how
	// many frames the broker delivers before the link acks some. The
	// consumer controller releases (acks) a frame only once every message
	// in it is confirmed, so it may hold up to Window frames of its
	// ConsumerSettings (each frame carries at least one message it keeps,
	// or it is released at once); a prefetch of at least the window never
	// withholds a frame the controller waits for. A lower prefetch caps the
	// frames in flight below the window (less throughput) and stalls a
	// chunked message that spans more frames than the prefetch. Set it from
	// the consumer's Window. Default DefaultPrefetch (the default window).
	Prefetch int

	// MaxPendingConfirms bounds the frames a link has published and the
	// broker has not confirmed (publisher confirms); Send blocks beyond it.
	// Default DefaultMaxPendingConfirms.
	MaxPendingConfirms int

	// MaxFrameSize bounds a frame; Send refuses a larger one with a
	// *delivery.FrameTooLargeError, and the link reports it to the controllers
	// (delivery.FrameSizeLimiter). It must not exceed the broker's
	// max_message_size. Default DefaultMaxFrameSize, RabbitMQ's default;
	// at most 512 MiB.
	MaxFrameSize int

	// DialTimeout bounds one connection attempt. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// Heartbeat is the AMQP heartbeat interval. Default DefaultHeartbeat.
	Heartbeat time.Duration

	// ReconnectMin and ReconnectMax bound the wait between attempts to
	// reconnect or to reopen a channel, which doubles after each failure.
	// The first attempt after a loss is immediate. Defaults
	// DefaultReconnectMin and DefaultReconnectMax.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// Logger receives connection and channel events: connected, lost,
	// reconnected, cancelled, returned. Default: none.
	Logger *slog.Logger
}

// ConfigError names a Config field that was rejected and why. Not worth
// retrying with the same Config.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("amqp: invalid Config.%s=%v: %s", e.Field, e.Value, e.Reason)
}

func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if _, err := amqp091.ParseURI(c.URL); err != nil {
		// A *url.Error repeats the URL, password included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return c, &ConfigError{Field: "URL", Value: redactURL(c.URL), Reason: err.Error()}
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.QueuePrefix == "" {
		c.QueuePrefix = DefaultQueuePrefix
	}
	for _, f := range []struct{ name, v string }{{"Name", c.Name}, {"QueuePrefix", c.QueuePrefix}, {"Exchange", c.Exchange}} {
		if !utf8.ValidString(f.v) || len(f.v) > maxNameLen {
			return c, &ConfigError{Field: f.name, Value: f.v, Reason: "at most 255 bytes of UTF-8"}
		}
	}
	if strings.HasPrefix(c.QueuePrefix, "amq.") {
		return c, &ConfigError{Field: "QueuePrefix", Value: c.QueuePrefix, Reason: `names starting with "amq." are reserved by the broker`}
	}
	switch c.QueueType {
	case "", "classic", "quorum":
	default:
		return c, &ConfigError{Field: "QueueType", Value: c.QueueType, Reason: `"classic", "quorum" or empty (the broker's default)`}
	}

	sizes := []struct {
		name string
		v    *int
		def  int
	}{
		{"Prefetch", &c.Prefetch, DefaultPrefetch},
		{"MaxPendingConfirms", &c.MaxPendingConfirms, DefaultMaxPendingConfirms},
		{"MaxFrameSize", &c.MaxFrameSize, DefaultMaxFrameSize},
	}
	for _, s := range sizes {
		switch {
		case *s.v == 0:
			*s.v = s.def
		case *s.v < 0:
			return c, &ConfigError{Field: s.name, Value: *s.v, Reason: "must be positive"}
		}
	}
	if c.Prefetch > 65535 {
		// basic.qos carries the prefetch count in 16 bits.
		return c, &ConfigError{Field: "Prefetch", Value: c.Prefetch, Reason: "at most 65535"}
	}
	if c.MaxFrameSize > maxFrameSizeLimit {
		return c, &ConfigError{Field: "MaxFrameSize", Value: c.MaxFrameSize, Reason: fmt.Sprintf("at most %d (RabbitMQ's largest max_message_size)", maxFrameSizeLimit)}
	}

	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"Heartbeat", &c.Heartbeat, DefaultHeartbeat},
		{"ReconnectMin", &c.ReconnectMin, DefaultReconnectMin},
		{"ReconnectMax", &c.ReconnectMax, DefaultReconnectMax},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return c, &ConfigError{Field: d.name, Value: *d.v, Reason: "must be positive"}
		}
	}
	if c.Heartbeat < time.Second {
		// AMQP negotiates the heartbeat in whole seconds.
		return c, &ConfigError{Field: "Heartbeat", Value: c.Heartbeat, Reason: "at least 1s"}
	}
	if c.ReconnectMax < c.ReconnectMin {
		return c, &ConfigError{Field: "ReconnectMax", Value: c.ReconnectMax, Reason: "must not be below ReconnectMin (" + c.ReconnectMin.String() + ")"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// maxNameLen is the longest AMQP short string: queue, exchange and
// connection names.
const maxNameLen = 255

// redactURL hides the password of an AMQP URI, for errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// reconnectWaits spaces a retry loop's attempts from ReconnectMin to
// ReconnectMax: the keeper's redialling, and the links' sessions reopened.
func (c *Config) reconnectWaits() *backoff.Backoff {
	return backoff.New(backoff.Policy{Min: c.ReconnectMin, Max: c.ReconnectMax})
}
