package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bridge-mq/bridge/delivery"
)

// Transports the service can run over.
var Transports = []string{"tcp", "nats", "amqp", "kafka"}

// checker gathers every problem with a configuration.
type checker struct{ errs []error }

func (c *checker) fail(name, value, reason string) {
	c.errs = append(c.errs, &ConfigError{Var: envPrefix + "_" + name, Value: value, Reason: reason})
}

func (c *checker) oneOf(name, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	c.fail(name, value, "must be one of "+strings.Join(allowed, ", "))
}

func (c *checker) positive(name string, v int) {
	if v <= 0 {
		c.fail(name, strconv.Itoa(v), "must be positive")
	}
}

func (c *checker) file(name, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		c.fail(name, path, "cannot read the file: "+err.Error())
	}
}

func (c *checker) err() error { return errors.Join(c.errs...) }

// ValidateRun checks the configuration of `bridge run`: one end of a stream.
func (cfg *Config) ValidateRun() error {
	var c checker
	switch cfg.Role {
	case "":
		c.fail("ROLE", "", "required: producer or consumer")
	case "producer", "consumer":
	default:
		c.fail("ROLE", cfg.Role, "must be producer or consumer")
	}
	cfg.checkCommon(&c)
	if cfg.Role == "producer" {
		c.oneOf("SOURCE", cfg.Source, "stdin", "http", "generate")
		if cfg.Source == "http" && cfg.HTTPAddr == "" {
			c.fail("HTTP_ADDR", "", "required with BRIDGE_SOURCE=http: where POST /v1/messages is served")
		}
		cfg.checkGenerate(&c)
	}
	if cfg.Role == "consumer" {
		c.oneOf("SINK", cfg.Sink, "stdout", "http")
		if cfg.Sink == "http" {
			if cfg.SinkURL == "" {
				c.fail("SINK_URL", "", "required with BRIDGE_SINK=http")
			} else if u, err := url.Parse(cfg.SinkURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.fail("SINK_URL", cfg.SinkURL, "must be an http:// or https:// URL")
			}
		}
		if cfg.DurableDir != "" {
			c.fail("DURABLE_DIR", cfg.DurableDir, "only a producer keeps a durable queue")
		}
	}
	return c.err()
}

// ValidateDemo checks the configuration of `bridge demo`: both ends in one
// process, the generator as source.
func (cfg *Config) ValidateDemo() error {
	var c checker
	cfg.checkCommon(&c)
	cfg.checkGenerate(&c)
	return c.err()
}

// checkCommon checks what every command shares: the transport and its
// settings, the stream, the protocol's settings, logging, HTTP.
func (cfg *Config) checkCommon(c *checker) {
	c.oneOf("TRANSPORT", cfg.Transport, Transports...)
	if cfg.Stream == "" || len(cfg.Stream) > 200 || !validName(cfg.Stream) {
		c.fail("STREAM", cfg.Stream, "1 to 200 letters, digits, '-' or '_'")
	}
	if cfg.ProducerID == "" {
		cfg.ProducerID = cfg.Stream
	}
	if len(cfg.ProducerID) > 255 || !utf8.ValidString(cfg.ProducerID) {
		c.fail("PRODUCER_ID", cfg.ProducerID, "at most 255 bytes of UTF-8")
	}
	cfg.checkTransport(c)
	if cfg.Window < 1 || cfg.Window > delivery.MaxWindow {
		c.fail("WINDOW", strconv.Itoa(cfg.Window), fmt.Sprintf("must be from 1 to %d", delivery.MaxWindow))
	}
	if cfg.ResendMin <= 0 {
		c.fail("RESEND_MIN", cfg.ResendMin.String(), "must be positive")
	}
	if cfg.ResendMax < cfg.ResendMin {
		c.fail("RESEND_MAX", cfg.ResendMax.String(), "must not be below BRIDGE_RESEND_MIN ("+cfg.ResendMin.String()+")")
	}
	c.positive("CHUNK_SIZE", cfg.ChunkSize)
	c.positive("MAX_MESSAGE_SIZE", cfg.MaxMessageSize)
	c.positive("DURABLE_MAX_BYTES", cfg.DurableMaxBytes)
	if cfg.ShutdownTimeout <= 0 {
		c.fail("SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout.String(), "must be positive")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		c.fail("LOG_LEVEL", cfg.LogLevel, "must be debug, info, warn or error")
	}
	c.oneOf("LOG_FORMAT", cfg.LogFormat, "text", "json")
	if cfg.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
			c.fail("HTTP_ADDR", cfg.HTTPAddr, "must be host:port (host may be empty)")
		}
	}
	c.file("TLS_CERT", cfg.TLSCert)
	c.file("TLS_KEY", cfg.TLSKey)
	c.file("TLS_CA", cfg.TLSCA)
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		c.fail("TLS_KEY", cfg.TLSKey, "BRIDGE_TLS_CERT and BRIDGE_TLS_KEY go together")
	}
	if cfg.TLSRequireClientCert && cfg.TLSCA == "" {
		c.fail("TLS_CA", "", "required with BRIDGE_TLS_REQUIRE_CLIENT_CERT: the CAs that sign client certificates")
	}
}

func (cfg *Config) checkTransport(c *checker) {
	switch cfg.Transport {
	case "tcp":
		if _, _, err := net.SplitHostPort(cfg.TCPAddr); err != nil {
			c.fail("TCP_ADDR", cfg.TCPAddr, "must be host:port")
		}
		c.oneOf("TCP_LISTEN", cfg.TCPListen, "consumer", "producer")
	case "nats":
		if cfg.NATSURL == "" {
			if _, _, err := net.SplitHostPort(cfg.NATSEmbeddedAddr); err != nil {
				c.fail("NATS_EMBEDDED_ADDR", cfg.NATSEmbeddedAddr, "must be host:port")
			}
		}
		if !validName(cfg.NATSPrefix) {
			c.fail("NATS_PREFIX", cfg.NATSPrefix, "letters, digits, '-' or '_'")
		}
	case "amqp":
		if cfg.AMQPURL == "" {
			c.fail("AMQP_URL", "", "required with BRIDGE_TRANSPORT=amqp, such as amqp://guest:guest@localhost:5672/")
		} else if u, err := url.Parse(cfg.AMQPURL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
			c.fail("AMQP_URL", redact(cfg.AMQPURL), "must be an amqp:// or amqps:// URL")
		}
	case "kafka":
		if len(cfg.KafkaBrokers) == 0 {
			c.fail("KAFKA_BROKERS", "", "required with BRIDGE_TRANSPORT=kafka: host:port, comma-separated")
		}
		for _, b := range cfg.KafkaBrokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				c.fail("KAFKA_BROKERS", b, "each broker must be host:port")
			}
		}
		if cfg.KafkaSASLMechanism != "" {
			c.oneOf("KAFKA_SASL_MECHANISM", cfg.KafkaSASLMechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
			if cfg.KafkaSASLUser == "" {
				c.fail("KAFKA_SASL_USER", "", "required with BRIDGE_KAFKA_SASL_MECHANISM")
			}
		}
	}
}

func (cfg *Config) checkGenerate(c *checker) {
	if cfg.Source != "generate" && cfg.Role != "" {
		return
	}
	if cfg.GenerateSize < 1 || cfg.GenerateSize > cfg.MaxMessageSize {
		c.fail("GENERATE_SIZE", strconv.Itoa(cfg.GenerateSize), fmt.Sprintf("must be from 1 to BRIDGE_MAX_MESSAGE_SIZE (%d)", cfg.MaxMessageSize))
	}
	if cfg.GenerateCount < 0 {
		c.fail("GENERATE_COUNT", strconv.Itoa(cfg.GenerateCount), "must not be negative")
	}
	if cfg.GenerateRate < 0 {
		c.fail("GENERATE_RATE", strconv.FormatFloat(cfg.GenerateRate, 'g', -1, 64), "must not be negative")
	}
}

// validName reports whether s is made of letters, digits, '-' and '_': safe
// in a subject, a queue or a topic name, and a file name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// redact hides a URL's password for messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
