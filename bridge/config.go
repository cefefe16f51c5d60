package bridge

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/bridge-mq/bridge/delivery"
)

// Config is the whole service's configuration, read from BRIDGE_*
// environment variables: every field's variable, default and meaning are in
// its tags, and `bridge env` prints them.
type Config struct {
	Role       string `envconfig:"ROLE" desc:"which end of the stream this process runs: producer or consumer (bridge run)"`
	Transport  string `envconfig:"TRANSPORT" default:"tcp" desc:"what carries the stream: tcp, nats, amqp or kafka"`
	Stream     string `envconfig:"STREAM" default:"bridge" desc:"the stream's name; both ends use the same"`
	ProducerID string `envconfig:"PRODUCER_ID" desc:"the producer's stable ID, kept across restarts (default: the stream's name)"`

	Mode          string        `envconfig:"MODE" default:"point-to-point" desc:"point-to-point (one producer, one consumer) or work-pulling (one producer, any number of consumers as workers, each message to one of them); set the same on every end"`
	WorkerID      string        `envconfig:"WORKER_ID" desc:"work-pulling consumer: this worker's stable ID, 1 to 64 letters, digits or '-' (default: derived from the host name and the process ID, shown in the log)"`
	WorkerTimeout time.Duration `envconfig:"WORKER_TIMEOUT" default:"5s" desc:"work pulling: how long a worker's stream may be silent before the producer takes the worker for dead and hands what it had not confirmed to the others (a worker then says hello again); both ends heartbeat every fifth of it"`
	MaxWorkers    int           `envconfig:"MAX_WORKERS" default:"64" desc:"work-pulling producer: the most workers served at once"`

	Secret             string `envconfig:"SECRET" desc:"a secret both ends of the stream share, at least 16 bytes (make it random): every frame is sealed with it end to end on every carrier, the tcp handshake proves it, and the embedded NATS server's credentials come from it (default: none, frames unsealed)"`
	SecretFile         string `envconfig:"SECRET_FILE" desc:"a file holding SECRET, a trailing newline trimmed (instead of SECRET, not with it)"`
	SecretPrevious     string `envconfig:"SECRET_PREVIOUS" desc:"while SECRET rotates: the secret before it, which still opens the peer's frames (and seals while the peer has only it)"`
	SecretPreviousFile string `envconfig:"SECRET_PREVIOUS_FILE" desc:"a file holding SECRET_PREVIOUS (instead of it, not with it)"`
	Insecure           bool   `envconfig:"INSECURE" desc:"start even with a tcp listener on a non-loopback address and neither SECRET nor client certificates, or the HTTP API on a non-loopback address without HTTP_TOKEN (each said in a warning at start)"`

	TCPAddr   string `envconfig:"TCP_ADDR" default:"127.0.0.1:7070" desc:"tcp: host:port the listening end listens on and the other end dials"`
	TCPListen string `envconfig:"TCP_LISTEN" default:"consumer" desc:"tcp: which end listens, consumer or producer"`

	TLSCert              string `envconfig:"TLS_CERT" desc:"PEM certificate this process presents (a tcp listener's, or a client certificate)"`
	TLSKey               string `envconfig:"TLS_KEY" desc:"PEM private key of TLS_CERT"`
	TLSCA                string `envconfig:"TLS_CA" desc:"PEM CA bundle that verifies the peer or broker (default: the system's)"`
	TLSRequireClientCert bool   `envconfig:"TLS_REQUIRE_CLIENT_CERT" desc:"tcp listener: refuse dialers without a certificate signed by TLS_CA"`
	TLS                  bool   `envconfig:"TLS" desc:"use TLS to the broker or peer even without TLS_CERT or TLS_CA (amqps:// and tls:// URLs imply it)"`

	NATSURL          string `envconfig:"NATS_URL" desc:"nats: server URL(s), comma-separated; unset: an embedded server (see NATS_EMBEDDED_ADDR)"`
	NATSJetStream    bool   `envconfig:"NATS_JETSTREAM" desc:"nats: carry data frames in a JetStream stream with acks, instead of core NATS"`
	NATSPrefix       string `envconfig:"NATS_PREFIX" default:"bridge" desc:"nats: subject (and JetStream stream name) prefix"`
	NATSUser         string `envconfig:"NATS_USER" desc:"nats: user name"`
	NATSPassword     string `envconfig:"NATS_PASSWORD" desc:"nats: password"`
	NATSToken        string `envconfig:"NATS_TOKEN" desc:"nats: authentication token"`
	NATSEmbeddedAddr string `envconfig:"NATS_EMBEDDED_ADDR" default:"127.0.0.1:4233" desc:"nats with no NATS_URL: where the embedded server listens; a process that finds it taken uses the server already there"`
	NATSEmbeddedDir  string `envconfig:"NATS_EMBEDDED_DIR" desc:"nats with no NATS_URL: the embedded server's JetStream store (default: a temporary directory)"`

	AMQPURL         string `envconfig:"AMQP_URL" desc:"amqp: broker URL, amqp://user:password@host:5672/vhost (amqps:// for TLS)"`
	AMQPQueuePrefix string `envconfig:"AMQP_QUEUE_PREFIX" default:"bridge" desc:"amqp: prefix of the stream's data and control queue names"`
	AMQPExchange    string `envconfig:"AMQP_EXCHANGE" desc:"amqp: exchange to publish through (default: the default exchange)"`

	KafkaBrokers       []string `envconfig:"KAFKA_BROKERS" desc:"kafka: bootstrap brokers, comma-separated host:port"`
	KafkaTopicPrefix   string   `envconfig:"KAFKA_TOPIC_PREFIX" default:"bridge" desc:"kafka: prefix of the stream's data and control topic names"`
	KafkaGroup         string   `envconfig:"KAFKA_GROUP" desc:"kafka: consumer group ID (default: derived from the stream)"`
	KafkaSASLMechanism string   `envconfig:"KAFKA_SASL_MECHANISM" desc:"kafka: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)"`
	KafkaSASLUser      string   `envconfig:"KAFKA_SASL_USER" desc:"kafka: SASL user name"`
	KafkaSASLPassword  string   `envconfig:"KAFKA_SASL_PASSWORD" desc:"kafka: SASL password"`

	Window          int           `envconfig:"WINDOW" default:"16384" desc:"sequence numbers the consumer lets the producer send beyond what is confirmed (a work-pulling worker: its demand, default 1000)"`
	WindowBytes     int           `envconfig:"WINDOW_BYTES" default:"4194304" desc:"payload bytes the consumer lets the producer have sent and not confirmed, whatever BRIDGE_WINDOW allows (a larger message goes alone)"`
	ResendMin       time.Duration `envconfig:"RESEND_MIN" default:"1s" desc:"the consumer's first retry interval while it waits for the producer"`
	ResendMax       time.Duration `envconfig:"RESEND_MAX" default:"30s" desc:"the longest retry interval (it grows 1.5x per retry)"`
	ChunkSize       int           `envconfig:"CHUNK_SIZE" default:"262144" desc:"bytes: larger messages travel in chunks of this size"`
	MaxMessageSize  int           `envconfig:"MAX_MESSAGE_SIZE" default:"16777216" desc:"bytes: larger messages are refused"`
	OnlyFlowControl bool          `envconfig:"ONLY_FLOW_CONTROL" desc:"no resends: delivery becomes at most once"`
	DurableDir      string        `envconfig:"DURABLE_DIR" desc:"producer: keep unconfirmed messages in a queue file in this directory, so a restart loses nothing (default: in memory only)"`
	DurableMaxBytes int           `envconfig:"DURABLE_MAX_BYTES" default:"268435456" desc:"producer: bytes of unconfirmed messages held (on disk with DURABLE_DIR) before it takes no more"`

	Source        string  `envconfig:"SOURCE" default:"stdin" desc:"producer: where messages come from: stdin (a line each), http (POST /v1/messages) or generate"`
	GenerateSize  int     `envconfig:"GENERATE_SIZE" default:"128" desc:"generate: bytes per message"`
	GenerateCount int     `envconfig:"GENERATE_COUNT" desc:"generate: messages to send, then stop (default 0: until stopped)"`
	GenerateRate  float64 `envconfig:"GENERATE_RATE" desc:"generate: messages per second (default 0: as fast as the window allows)"`

	Sink         string        `envconfig:"SINK" default:"stdout" desc:"consumer: where messages go: stdout (a line each) or http (POST to SINK_URL)"`
	SinkURL      string        `envconfig:"SINK_URL" desc:"http sink: the URL each message is POSTed to; a 2xx answer confirms it"`
	SinkTimeout  time.Duration `envconfig:"SINK_TIMEOUT" default:"10s" desc:"http sink: timeout of one POST"`
	SinkRetryMax time.Duration `envconfig:"SINK_RETRY_MAX" default:"30s" desc:"http sink: the longest wait between retries of a failed POST (a redirect is a failed POST; without DLQ it never gives up)"`
	SinkBatch    int           `envconfig:"SINK_BATCH" default:"1" desc:"http sink: messages POSTed in one request, a line each (application/x-ndjson), 1 to 10000; 1: a plain POST a message"`

	SinkMaxAttempts int    `envconfig:"SINK_MAX_ATTEMPTS" default:"10" desc:"http sink with DLQ: failed attempts (no answer, a 5xx, 408, 429, a redirect) after which a message is dead-lettered; any other 4xx dead-letters it at once (without DLQ a message is retried for ever)"`
	DLQ             string `envconfig:"DLQ" desc:"consumer with the http sink: the dead-letter queue, where a message goes when the sink gives up on it, recorded for good before it is confirmed: file:///dir (JSON lines in dir/STREAM.dlq.jsonl, synced), or carrier or carrier:NAME (a dead-letter stream on the stream's broker, NAME default STREAM.dlq: for nats the JetStream stream PREFIX_NAME, for amqp the durable queue PREFIX.NAME, for kafka the topic PREFIX.NAME); default: none, a message is retried for ever"`
	DLQReplayURL    string `envconfig:"DLQ_REPLAY_URL" desc:"bridge dlq replay: the producer's POST /v1/messages URL to send the dead letters to, with HTTP_TOKEN as its bearer token (default: replay as the stream's producer itself, BRIDGE_PRODUCER_ID over BRIDGE_TRANSPORT; stop that producer first)"`

	HTTPAddr        string        `envconfig:"HTTP_ADDR" desc:"address of the HTTP server: /healthz, /readyz, /metrics, and POST /v1/messages for SOURCE=http (default: no server)"`
	HTTPToken       string        `envconfig:"HTTP_TOKEN" desc:"bearer token the HTTP API (/v1/...) requires (default: none; required on a non-loopback HTTP_ADDR unless INSECURE)"`
	HTTPTimeout     time.Duration `envconfig:"HTTP_TIMEOUT" default:"30s" desc:"HTTP server: the longest a request may take to arrive, body included, and its answer to be written (a ?confirm=true wait is not bounded by it), and a keep-alive connection may stay idle"`
	HTTPMaxConns    int           `envconfig:"HTTP_MAX_CONNS" default:"256" desc:"HTTP server: connections open at once; more wait to be accepted"`
	HTTPBatchMax    int           `envconfig:"HTTP_BATCH_MAX" default:"1000" desc:"http source: the most messages (lines) one application/x-ndjson POST carries, taken all or none; more, or a body over MAX_MESSAGE_SIZE, is answered 413 (no more than the consumer's WINDOW, or it never fits)"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s" desc:"on SIGINT or SIGTERM, how long to deliver what is in flight before exiting"`

	// Tracing is read from OpenTelemetry's OTEL_ variables, not BRIDGE_
	// ones (see TracingConfig).
	Tracing TracingConfig `ignored:"true"`
}

// envPrefix is the prefix of every variable.
const envPrefix = "BRIDGE"

// ConfigError names a variable that is wrong and what a right value looks
// like. `bridge` exits with status 2 on one. Not worth retrying until the
// environment changes.
type ConfigError struct {
	Var    string // the full variable name, BRIDGE_...
	Value  string
	Reason string
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Var, e.Reason)
	}
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Reason)
}

// LoadConfig reads the configuration from the process's environment, and
// each of sections too: pointers to structs tagged as Config is, whose
// variables are BRIDGE_ ones (the bench's configuration is one). Every
// problem found (a value that does not parse, a BRIDGE_ variable that
// neither Config nor a section reads) comes back at once, joined, each a
// *ConfigError. It does not check that the values fit together; the
// Validate methods do.
func LoadConfig(sections ...any) (Config, error) {
	var cfg Config
	var errs []error
	for _, spec := range append([]any{&cfg}, sections...) {
		if err := envconfig.Process(envPrefix, spec); err != nil {
			var pe *envconfig.ParseError
			if errors.As(err, &pe) {
				errs = append(errs, &ConfigError{Var: pe.KeyName, Value: pe.Value, Reason: "not a valid " + typeName(pe.TypeName)})
			} else {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, unknownVariables(sections)...)
	if _, set := os.LookupEnv(envPrefix + "_WINDOW"); !set && cfg.WorkPulling() {
		cfg.Window = delivery.DefaultWorkerWindow // a worker's demand; see its doc
	}
	cfg.Tracing = tracingFromEnv()
	return cfg, errors.Join(errs...)
}

func typeName(goType string) string {
	switch goType {
	case "int", "int64":
		return "integer"
	case "float64":
		return "number"
	case "bool":
		return "boolean (true or false)"
	case "Duration", "time.Duration":
		return "duration (such as 500ms, 2s or 1m)"
	}
	return goType
}

// knownVariables lists every BRIDGE_ variable of Config and the sections,
// as envconfig names them.
func knownVariables(sections []any) []string {
	var b strings.Builder
	for _, spec := range append([]any{&Config{}}, sections...) {
		envconfig.Usagef(envPrefix, spec, &b, "{{range .}}{{usage_key .}}\n{{end}}")
	}
	return strings.Fields(b.String())
}

// testPrefix names variables the test suites read (the brokers to test
// against); the service leaves them alone.
const testPrefix = envPrefix + "_TEST_"

// retiredVariables are variables the service no longer reads, and what to
// set instead: one left in an environment must not be taken for a typo,
// nor silently ignored.
var retiredVariables = map[string]string{
	envPrefix + "_TCP_SECRET": "no longer read: set BRIDGE_SECRET (or BRIDGE_SECRET_FILE) instead, on both ends: it seals every frame on every carrier and secures the tcp handshake",
}

// unknownVariables reports every BRIDGE_ variable set that the service does
// not read: a typo must not be silently ignored.
func unknownVariables(sections []any) []error {
	known := knownVariables(sections)
	var errs []error
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix+"_") || strings.HasPrefix(name, testPrefix) || slices.Contains(known, name) {
			continue
		}
		if instead, ok := retiredVariables[name]; ok {
			errs = append(errs, &ConfigError{Var: name, Reason: instead})
			continue
		}
		reason := "unknown variable (`bridge env` lists them all)"
		if near := nearest(name, known); near != "" {
			reason = "unknown variable; did you mean " + near + "?"
		}
		errs = append(errs, &ConfigError{Var: name, Reason: reason})
	}
	return errs
}

// nearest returns the known name closest to name, if it is close.
func nearest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// PrintEnv writes every variable of Config and the sections with its
// type, default and description: `bridge env`.
func PrintEnv(w io.Writer, sections ...any) error {
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tDESCRIPTION")
	for _, spec := range append([]any{&Config{}}, sections...) {
		err := envconfig.Usagef(envPrefix, spec, tw,
			"{{range .}}{{usage_key .}}\t{{usage_type .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}")
		if err != nil {
			return err
		}
	}
	return tw.Flush()
}
