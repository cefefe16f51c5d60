package bridge

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bridge-mq/bridge/delivery"
)

// BenchConfig configures `bridge bench`, from BRIDGE_BENCH_* variables.
type BenchConfig struct {
	Transports []string `envconfig:"TRANSPORTS" desc:"bench: carriers to compare, from tcp, nats, jetstream (NATS with JetStream), amqp and kafka (default: tcp and nats, plus amqp and kafka when BRIDGE_AMQP_URL or BRIDGE_KAFKA_BROKERS is set); nats and jetstream use BRIDGE_NATS_URL, or an embedded server when it is unset"`
	Count      int      `envconfig:"COUNT" default:"100000" desc:"bench: messages per run (each transport, size and mode)"`
	MaxBytes   int64    `envconfig:"MAX_BYTES" default:"1073741824" desc:"bench: at most this many payload bytes per run: runs of large messages send fewer than BRIDGE_BENCH_COUNT, so that a broker that keeps what it was sent (kfake keeps all in memory) and the bench's time stay bounded (0: no bound)"`
	Size       []int    `envconfig:"SIZE" default:"128" desc:"bench: bytes per message, 32 to 1000000; a comma-separated list runs each size"`
	Window     int      `envconfig:"WINDOW" default:"1000" desc:"bench: the consumer's window in reliable runs (and the raw amqp consumer's prefetch)"`
	Rate       float64  `envconfig:"RATE" desc:"bench: messages per second (default 0: as fast as possible; a fixed rate for latency runs)"`
	Durable    bool     `envconfig:"DURABLE" desc:"bench: also run reliable delivery with the durable producer queue (in a temporary directory)"`
	Rounds     int      `envconfig:"ROUNDS" default:"2" desc:"bench: each run is split into this many rounds, the modes taking turns on the same broker, so a change in the machine's load weighs on all of them alike"`
	Format     string   `envconfig:"FORMAT" default:"table" desc:"bench: output on stdout, table or json"`
	Report     string   `envconfig:"REPORT" desc:"bench: also write a self-contained HTML report with charts to this file"`
	KafkaLabel string   `envconfig:"KAFKA_LABEL" desc:"bench: what the Kafka at BRIDGE_KAFKA_BROKERS is, shown in every output (default: its cluster ID; kfake, the test broker, is always labelled as one)"`
}

// BenchTransports are the names BRIDGE_BENCH_TRANSPORTS takes: the service's
// transports, and jetstream for NATS with BRIDGE_NATS_JETSTREAM.
var BenchTransports = []string{"tcp", "nats", "jetstream", "amqp", "kafka"}

// The message sizes the bench takes. A message holds its number and the
// time it was made (about 30 bytes); every raw client sends a message as one
// broker message, and brokers refuse those over about 1 MB by default.
const (
	minBenchSize = 32
	maxBenchSize = 1_000_000
)

// ValidateBench checks the configuration of `bridge bench`, and fills in
// the default transports. BRIDGE_TRANSPORT is not used: the bench runs every
// transport of BRIDGE_BENCH_TRANSPORTS, and each one's settings are checked.
func (cfg *Config) ValidateBench() error {
	var c checker
	common := *cfg
	common.Transport, common.TCPAddr = "tcp", "127.0.0.1:0" // both ends are here
	common.checkCommon(&c)

	b := &cfg.Bench
	if len(b.Transports) == 0 {
		b.Transports = defaultBenchTransports(cfg)
	}
	seen := map[string]bool{}
	for _, name := range b.Transports {
		switch {
		case !slices.Contains(BenchTransports, name):
			c.fail("BENCH_TRANSPORTS", name, "each must be one of "+strings.Join(BenchTransports, ", "))
			continue
		case seen[name]:
			c.fail("BENCH_TRANSPORTS", name, "listed twice")
			continue
		}
		seen[name] = true
		cfg.checkBenchTransport(&c, name)
	}
	if len(b.Size) == 0 {
		c.fail("BENCH_SIZE", "", "at least one size")
	}
	for _, size := range b.Size {
		if size < minBenchSize || size > maxBenchSize || size > cfg.MaxMessageSize {
			c.fail("BENCH_SIZE", strconv.Itoa(size), "each must be from 32 (a message holds its number and timestamp) to 1000000 (a raw client sends it as one broker message) and at most BRIDGE_MAX_MESSAGE_SIZE")
		}
	}
	c.positive("BENCH_COUNT", b.Count)
	if b.MaxBytes < 0 {
		c.fail("BENCH_MAX_BYTES", strconv.FormatInt(b.MaxBytes, 10), "must not be negative (0: no bound)")
	}
	if b.Rounds < 1 || (b.Count > 0 && b.Rounds > b.Count) {
		c.fail("BENCH_ROUNDS", strconv.Itoa(b.Rounds), "must be from 1 to BRIDGE_BENCH_COUNT")
	}
	for _, size := range b.Size {
		if n := b.countFor(size); b.Count > 0 && b.Rounds >= 1 && size > 0 && n < b.Rounds {
			c.fail("BENCH_MAX_BYTES", strconv.FormatInt(b.MaxBytes, 10), fmt.Sprintf("leaves %d messages of %d bytes, fewer than BRIDGE_BENCH_ROUNDS", n, size))
		}
	}
	if b.Window < 1 || b.Window > delivery.MaxWindow {
		c.fail("BENCH_WINDOW", strconv.Itoa(b.Window), "must be from 1 to "+strconv.Itoa(delivery.MaxWindow))
	}
	if b.Rate < 0 {
		c.fail("BENCH_RATE", strconv.FormatFloat(b.Rate, 'g', -1, 64), "must not be negative (0: as fast as possible)")
	}
	c.oneOf("BENCH_FORMAT", b.Format, "table", "json")
	if b.Report != "" {
		if fi, err := os.Stat(filepath.Dir(b.Report)); err != nil || !fi.IsDir() {
			c.fail("BENCH_REPORT", b.Report, "its directory must exist")
		}
	}
	return c.err()
}

// countFor is how many messages of size a run sends: BRIDGE_BENCH_COUNT,
// or fewer when they would exceed BRIDGE_BENCH_MAX_BYTES.
func (b *BenchConfig) countFor(size int) int {
	if b.MaxBytes > 0 && size > 0 && int64(b.Count)*int64(size) > b.MaxBytes {
		return int(b.MaxBytes / int64(size))
	}
	return b.Count
}

// defaultBenchTransports is tcp and NATS, with RabbitMQ and Kafka when the
// configuration says where they are.
func defaultBenchTransports(cfg *Config) []string {
	ts := []string{"tcp", "nats"}
	if cfg.AMQPURL != "" {
		ts = append(ts, "amqp")
	}
	if len(cfg.KafkaBrokers) > 0 {
		ts = append(ts, "kafka")
	}
	return ts
}

// checkBenchTransport checks the settings one bench transport needs.
func (cfg *Config) checkBenchTransport(c *checker, name string) {
	t := *cfg
	t.Transport = benchCarrier(name)
	switch {
	case name == "amqp" && cfg.AMQPURL == "":
		c.fail("AMQP_URL", "", "required with amqp in BRIDGE_BENCH_TRANSPORTS, such as amqp://guest:guest@localhost:5672/")
	case name == "kafka" && len(cfg.KafkaBrokers) == 0:
		c.fail("KAFKA_BROKERS", "", "required with kafka in BRIDGE_BENCH_TRANSPORTS: host:port, comma-separated")
	case name != "tcp": // the bench's tcp listens on a free loopback port of its own
		t.checkTransport(c)
	}
}

// benchCarrier is the service's transport behind a bench transport name.
func benchCarrier(name string) string {
	if name == "jetstream" {
		return "nats"
	}
	return name
}
