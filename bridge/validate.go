package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

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
	cfg.checkTransport(&c, cfg.Transport)
	cfg.checkMode(&c)
	switch cfg.Role {
	case "producer":
		c.oneOf("SOURCE", cfg.Source, "stdin", "http", "generate")
		if cfg.Source == "http" && cfg.HTTPAddr == "" {
			c.fail("HTTP_ADDR", "", "required with BRIDGE_SOURCE=http: where POST /v1/messages is served")
		}
		if cfg.Source == "generate" {
			cfg.checkGenerate(&c)
		}
		if cfg.HTTPBatchMax < 1 {
			c.fail("HTTP_BATCH_MAX", strconv.Itoa(cfg.HTTPBatchMax), "must be from 1 up")
		}
		if cfg.DLQ != "" {
			c.fail("DLQ", cfg.DLQ, "only a consumer's sink dead-letters (`bridge dlq list` and `bridge dlq replay` read the queue)")
		}
		cfg.checkListenerTLS(&c, delivery.ProducerEnd)
	case "consumer":
		c.oneOf("SINK", cfg.Sink, "stdout", "http")
		if cfg.Sink == "http" {
			if cfg.SinkURL == "" {
				c.fail("SINK_URL", "", "required with BRIDGE_SINK=http")
			} else if u, err := url.Parse(cfg.SinkURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.fail("SINK_URL", redact(cfg.SinkURL), "must be an http:// or https:// URL")
			}
		}
		if cfg.DurableDir != "" {
			c.fail("DURABLE_DIR", cfg.DurableDir, "only a producer keeps a durable queue")
		}
		cfg.checkSink(&c)
		cfg.checkListenerTLS(&c, delivery.ConsumerEnd)
	}
	cfg.checkClientCerts(&c)
	if !cfg.Insecure {
		for _, e := range cfg.exposures() {
			c.fail(e.name, e.value, e.what+"; "+e.fix+", or BRIDGE_INSECURE=true if that is meant")
		}
	}
	return c.err()
}

// checkSink checks the consumer's sink and its dead-letter queue.
func (cfg *Config) checkSink(c *checker) {
	if cfg.SinkBatch < 1 || cfg.SinkBatch > maxSinkBatch {
		c.fail("SINK_BATCH", strconv.Itoa(cfg.SinkBatch), fmt.Sprintf("must be from 1 to %d", maxSinkBatch))
	}
	if cfg.SinkMaxAttempts < 1 {
		c.fail("SINK_MAX_ATTEMPTS", strconv.Itoa(cfg.SinkMaxAttempts), "must be from 1 up")
	}
	if cfg.DLQ == "" {
		return
	}
	cfg.checkDLQ(c)
	if cfg.Sink != "http" {
		c.fail("DLQ", cfg.DLQ, "only BRIDGE_SINK=http gives up on a message; the "+cfg.Sink+" sink never does, and stops on a failure")
	}
}

// maxSinkBatch bounds BRIDGE_SINK_BATCH.
const maxSinkBatch = 10000

// checkDLQ checks that BRIDGE_DLQ names a dead-letter queue: file:///dir,
// or carrier[:NAME] on a carrier that keeps one.
func (cfg *Config) checkDLQ(c *checker) {
	if cfg.DLQ == "" {
		c.fail("DLQ", "", "required: the dead-letter queue, file:///dir or carrier[:NAME]")
		return
	}
	name, onCarrier := cfg.dlqCarrierName()
	switch {
	case onCarrier && !slices.Contains([]string{"nats", "amqp", "kafka"}, cfg.Transport):
		c.fail("DLQ", cfg.DLQ, "a dead-letter stream on the carrier needs BRIDGE_TRANSPORT nats, amqp or kafka (tcp keeps nothing): use file:///dir")
	case onCarrier && (len(name) > 200 || !validDottedName(name)):
		c.fail("DLQ", cfg.DLQ, "carrier:NAME takes a NAME of letters, digits, '-', '_' and '.', up to 200")
	case !onCarrier && dlqDir(cfg.DLQ) == "":
		c.fail("DLQ", cfg.DLQ, "must be file:///dir (an absolute directory), carrier or carrier:NAME")
	}
}

// validDottedName reports whether s is names of validName joined by dots.
func validDottedName(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if !validName(part) {
			return false
		}
	}
	return true
}

// ValidateDLQ checks the configuration of `bridge dlq list` and, with
// replay, of `bridge dlq replay`: the dead-letter queue, and where the
// dead letters go back to: BRIDGE_DLQ_REPLAY_URL, or the stream over its
// transport, as its producer.
func (cfg *Config) ValidateDLQ(replay bool) error {
	var c checker
	cfg.checkCommon(&c)
	cfg.checkDLQ(&c)
	if _, onCarrier := cfg.dlqCarrierName(); onCarrier && (!replay || cfg.DLQReplayURL != "") {
		cfg.checkTransport(&c, cfg.Transport) // its broker keeps the queue
	}
	if replay {
		if cfg.DLQReplayURL != "" {
			if u, err := url.Parse(cfg.DLQReplayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.fail("DLQ_REPLAY_URL", redact(cfg.DLQReplayURL), "must be an http:// or https:// URL: the producer's POST /v1/messages")
			}
		} else {
			if cfg.WorkPulling() {
				c.fail("DLQ_REPLAY_URL", "", "required with BRIDGE_MODE=work-pulling: replaying as the stream's producer itself is point-to-point only; give the work-pulling producer's POST /v1/messages")
			}
			cfg.checkTransport(&c, cfg.Transport)
			cfg.checkListenerTLS(&c, delivery.ProducerEnd)
			cfg.checkClientCerts(&c)
		}
	}
	return c.err()
}

// ValidateDemo checks the configuration of `bridge demo`: both ends in one
// process, the generator as source.
func (cfg *Config) ValidateDemo() error {
	var c checker
	cfg.checkCommon(&c)
	cfg.checkTransport(&c, cfg.Transport)
	cfg.checkGenerate(&c)
	cfg.checkListenerTLS(&c, delivery.ConsumerEnd)
	cfg.checkListenerTLS(&c, delivery.ProducerEnd)
	cfg.checkClientCerts(&c)
	return c.err()
}

// ValidateTransports checks what a command that runs both ends of its
// streams in this process, over each of the named transports, needs (the
// bench does): the settings every command shares, and each transport's
// own. BRIDGE_TRANSPORT is not used.
func (cfg *Config) ValidateTransports(names ...string) error {
	var c checker
	cfg.checkCommon(&c)
	for _, name := range names {
		cfg.checkTransport(&c, name)
	}
	return c.err()
}

// checkCommon checks what every command shares: the stream, the protocol's
// settings, logging, HTTP and TLS files.
func (cfg *Config) checkCommon(c *checker) {
	if cfg.Stream == "" || len(cfg.Stream) > 200 || !validName(cfg.Stream) {
		c.fail("STREAM", cfg.Stream, "1 to 200 letters, digits, '-' or '_'")
	}
	if cfg.ProducerID == "" {
		cfg.ProducerID = cfg.Stream
	}
	cfg.checkProtocol(c)
	cfg.checkSecrets(c)
	c.errs = append(c.errs, cfg.Tracing.check()...)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout},
		{"SINK_TIMEOUT", cfg.SinkTimeout},
		{"SINK_RETRY_MAX", cfg.SinkRetryMax},
		{"HTTP_TIMEOUT", cfg.HTTPTimeout},
	} {
		if d.v <= 0 {
			c.fail(d.name, d.v.String(), "must be positive")
		}
	}
	if cfg.HTTPMaxConns < 1 {
		c.fail("HTTP_MAX_CONNS", strconv.Itoa(cfg.HTTPMaxConns), "must be from 1 up")
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

// checkTransport checks the transport name and that carrier's settings.
func (cfg *Config) checkTransport(c *checker, name string) {
	t, ok := transportNamed(name)
	if !ok {
		c.fail("TRANSPORT", name, "must be one of "+strings.Join(Transports(), ", "))
		return
	}
	t.check(cfg, c)
}

// checkListenerTLS: with TLS on, a tcp end that listens needs a certificate
// to present.
func (cfg *Config) checkListenerTLS(c *checker, end delivery.End) {
	if cfg.Transport != "tcp" || !cfg.tlsOn() || cfg.TLSCert != "" {
		return
	}
	if listens := cfg.TCPListen == "producer"; listens == (end == delivery.ProducerEnd) {
		c.fail("TLS_CERT", "", "required with TLS on the end that listens (BRIDGE_TCP_LISTEN="+cfg.TCPListen+")")
	}
}

// checkClientCerts: only a tcp listener verifies client certificates;
// elsewhere BRIDGE_TLS_REQUIRE_CLIENT_CERT would be silently ignored.
func (cfg *Config) checkClientCerts(c *checker) {
	if cfg.TLSRequireClientCert && cfg.Transport != "tcp" {
		c.fail("TLS_REQUIRE_CLIENT_CERT", "true", "only a tcp listener verifies client certificates; with BRIDGE_TRANSPORT="+cfg.Transport+" the broker decides")
	}
}

// exposure is a way a configuration lets in whoever reaches the host: `bridge
// run` refuses each, unless BRIDGE_INSECURE, and then warns of it.
type exposure struct {
	name, value string // the variable (without BRIDGE_) and its value
	what, fix   string
}

// exposures lists what `bridge run` with this configuration serves on a
// non-loopback address unauthenticated: a tcp listener with neither a
// secret nor client certificates, the HTTP API without a token.
func (cfg *Config) exposures() []exposure {
	var out []exposure
	listens := cfg.TCPListen == cfg.Role
	if cfg.Transport == "tcp" && listens && !loopback(cfg.TCPAddr) && !cfg.Sealed() && !(cfg.TLSRequireClientCert && cfg.TLSCA != "") {
		out = append(out, exposure{name: "TCP_ADDR", value: cfg.TCPAddr,
			what: "the tcp listener is on a non-loopback address with neither BRIDGE_SECRET nor client certificates: whoever reaches it can join the stream",
			fix:  "set BRIDGE_SECRET (or BRIDGE_TLS_REQUIRE_CLIENT_CERT with BRIDGE_TLS_CA)"})
	}
	if cfg.Role == "producer" && cfg.Source == "http" && cfg.HTTPAddr != "" && !loopback(cfg.HTTPAddr) && cfg.HTTPToken == "" {
		out = append(out, exposure{name: "HTTP_ADDR", value: cfg.HTTPAddr,
			what: "the HTTP API (/v1/) is on a non-loopback address without BRIDGE_HTTP_TOKEN: whoever reaches it can send messages",
			fix:  "set BRIDGE_HTTP_TOKEN"})
	}
	return out
}

// loopback reports whether addr's host is a loopback address (127.0.0.0/8,
// ::1) or localhost. An empty host, 0.0.0.0 or :: is every interface, and a
// name other than localhost may resolve to anything: neither is loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// protocolVars names the variable behind each protocol setting the service
// exposes; the protocol's own rules check their values.
var protocolVars = []struct{ setting, name string }{
	{"ProducerID", "PRODUCER_ID"},
	{"Window", "WINDOW"},
	{"WindowBytes", "WINDOW_BYTES"},
	{"ResendMin", "RESEND_MIN"},
	{"ResendMax", "RESEND_MAX"},
	{"ChunkSize", "CHUNK_SIZE"},
	{"MaxMessageSize", "MAX_MESSAGE_SIZE"},
	{"MaxUnconfirmedBytes", "DURABLE_MAX_BYTES"},
}

// checkProtocol checks the protocol's settings with the protocol's own
// rules, and reports each problem under its variable. The protocol takes 0
// for its default; here a variable left unset is the default, so one set to
// 0 is a mistake.
func (cfg *Config) checkProtocol(c *checker) {
	for _, z := range []struct {
		name   string
		zero   bool
		reason string
	}{
		{"WINDOW", cfg.Window == 0, "must be from 1 up; unset it for the default"},
		{"WINDOW_BYTES", cfg.WindowBytes == 0, "must be from 1 up; unset it for the default"},
		{"CHUNK_SIZE", cfg.ChunkSize == 0, "must be from 1 up; unset it for the default"},
		{"MAX_MESSAGE_SIZE", cfg.MaxMessageSize == 0, "must be from 1 up; unset it for the default"},
		{"DURABLE_MAX_BYTES", cfg.DurableMaxBytes == 0, "must be from 1 up; unset it for the default"},
		{"RESEND_MIN", cfg.ResendMin == 0, "must be positive; unset it for the default"},
		{"RESEND_MAX", cfg.ResendMax == 0, "must be positive; unset it for the default"},
	} {
		if z.zero {
			c.fail(z.name, "0", z.reason)
		}
	}
	seen := map[string]bool{} // both settings have ProducerID and MaxMessageSize
	for _, err := range settingErrorsOf(cfg.ProducerSettings(nil).Validate(), cfg.ConsumerSettings(nil).Validate()) {
		name, reason := err.Setting, err.Reason
		for _, v := range protocolVars {
			if v.setting == err.Setting {
				name = v.name
			}
			reason = strings.ReplaceAll(reason, v.setting, envPrefix+"_"+v.name)
		}
		if key := name + reason; !seen[key] {
			seen[key] = true
			c.fail(name, settingValue(err.Value), reason)
		}
	}
}

// settingErrorsOf flattens what the protocol's Validate methods return.
func settingErrorsOf(errs ...error) []*delivery.SettingError {
	var out []*delivery.SettingError
	for _, err := range errs {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			out = append(out, settingErrorsOf(joined.Unwrap()...)...)
			continue
		}
		var se *delivery.SettingError
		if errors.As(err, &se) {
			out = append(out, se)
		}
	}
	return out
}

func settingValue(v any) string {
	switch v := v.(type) {
	case time.Duration:
		return v.String()
	case int:
		return strconv.Itoa(v)
	}
	return fmt.Sprint(v)
}

func (cfg *Config) checkGenerate(c *checker) {
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

// redact is a URL as logs and errors may show it: without its user info
// (a password, a token) and its query (which often holds a token), each
// replaced by "redacted", and without its fragment. A URL that does not
// parse could hold anything, so none of it is shown.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || (u.Scheme == "" && u.Host == "") { // an opaque one ("user:pw@host") is not what it seems
		return "(a URL that does not parse)"
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme + ":")
	}
	if u.Host != "" || u.User != nil {
		b.WriteString("//")
		if u.User != nil {
			b.WriteString("redacted@")
		}
		b.WriteString(u.Host)
	}
	b.WriteString(u.EscapedPath())
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?redacted")
	}
	return b.String()
}
