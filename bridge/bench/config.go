package bench

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/delivery"
)

// Config configures `bridge bench`, from BRIDGE_BENCH_* variables; the
// carriers' settings (the brokers, TLS, credentials) and the protocol's are
// the service's, in bridge.Config.
type Config struct {
	Transports []string `envconfig:"BENCH_TRANSPORTS" desc:"bench: carriers to compare, from tcp, nats, jetstream (NATS with JetStream), amqp and kafka (default: tcp and nats, plus amqp and kafka when BRIDGE_AMQP_URL or BRIDGE_KAFKA_BROKERS is set); nats and jetstream use BRIDGE_NATS_URL, or an embedded server when it is unset"`
	Count      int      `envconfig:"BENCH_COUNT" default:"100000" desc:"bench: messages per run (each transport, size and mode)"`
	MaxBytes   int64    `envconfig:"BENCH_MAX_BYTES" default:"1073741824" desc:"bench: at most this many payload bytes per run: runs of large messages send fewer than BRIDGE_BENCH_COUNT, so that a broker that keeps what it was sent (kfake keeps all in memory) and the bench's time stay bounded (0: no bound)"`
	Size       []int    `envconfig:"BENCH_SIZE" default:"128" desc:"bench: bytes per message, 32 to 1000000; a comma-separated list runs each size"`
	Window     int      `envconfig:"BENCH_WINDOW" desc:"bench: the consumer's window in reliable runs (and the raw amqp consumer's prefetch) (default: the protocol's, 16384; in the work-pulling scenario a worker's demand, 1000)"`
	Rate       float64  `envconfig:"BENCH_RATE" desc:"bench: messages per second (default 0: as fast as possible; a fixed rate for latency runs)"`
	Durable    bool     `envconfig:"BENCH_DURABLE" desc:"bench: also run reliable delivery with the durable producer queue (in a temporary directory)"`
	Sealed     bool     `envconfig:"BENCH_SEALED" desc:"bench: also run reliable delivery with sealed frames (mode sealed, sealed with BRIDGE_SECRET, or a random secret when it is unset) beside it unsealed (mode reliable), on every transport"`
	Headers    bool     `envconfig:"BENCH_HEADERS" desc:"bench: also run reliable delivery with three headers of 32 bytes on every message (mode headers)"`
	// TraceSample, above 0, adds the traced mode.
	TraceSample float64 `envconfig:"BENCH_TRACE_SAMPLE" desc:"bench: also run reliable delivery traced as the service traces it, this share of messages sampled, 0 to 1 (mode traced; spans go through the SDK's batch processor to an exporter that drops them) (default 0: no traced mode)"`
	Rounds      int     `envconfig:"BENCH_ROUNDS" default:"2" desc:"bench: each run is split into this many rounds, the modes taking turns on the same broker, so a change in the machine's load weighs on all of them alike"`
	Format      string  `envconfig:"BENCH_FORMAT" default:"table" desc:"bench: output on stdout, table or json"`
	Report      string  `envconfig:"BENCH_REPORT" desc:"bench: also write a self-contained HTML report with charts to this file"`
	// Scenario, Workers and SinkCost choose and shape the work-pulling
	// scenario (see runWorkPulling).
	Scenario   string        `envconfig:"BENCH_SCENARIO" default:"point-to-point" desc:"bench: point-to-point (one producer, one consumer: raw against reliable), or work-pulling (one producer, BRIDGE_BENCH_WORKERS workers each spending BRIDGE_BENCH_SINK_COST on every message: the protocol's work pulling against the broker's own competing consumers, then a short pass with a worker killed; one size; set BRIDGE_BENCH_COUNT to a few thousand, a worker handles about 1000 msgs/s at 1ms)"`
	Workers    []int         `envconfig:"BENCH_WORKERS" default:"1,2,4" desc:"bench, work-pulling: the counts of workers, comma-separated, each from 1 to BRIDGE_MAX_WORKERS; the kill pass runs with the largest, when it is 2 or more"`
	SinkCost   time.Duration `envconfig:"BENCH_SINK_COST" default:"1ms" desc:"bench, work-pulling: what each message costs a worker, slept before it acknowledges it, 0 to 1s"`
	CPUProfile string        `envconfig:"BENCH_CPU_PROFILE" desc:"bench: write a CPU profile of the whole bench to this file (go tool pprof reads it); every sample is labelled with its transport, size and mode, so -tagfocus=mode=headers shows one mode's"`
	KafkaLabel string        `envconfig:"BENCH_KAFKA_LABEL" desc:"bench: what the Kafka at BRIDGE_KAFKA_BROKERS is, shown in every output (default: its cluster ID; kfake, the test broker, is always labelled as one)"`
}

// The message sizes the bench takes. A message holds its number and the
// time it was made (about 30 bytes); every raw client sends a message as one
// broker message, and brokers refuse those over about 1 MB by default.
const (
	minSize = 32
	maxSize = 1_000_000
)

// Validate checks the bench's configuration and the settings of the
// service's (svc) that it uses, and fills in the default transports. The
// bench runs every transport of BRIDGE_BENCH_TRANSPORTS, so
// BRIDGE_TRANSPORT is not used and each one's settings are checked. Every
// problem is a *bridge.ConfigError, all of them joined.
func (b *Config) Validate(svc *bridge.Config) error {
	var errs []error
	fail := func(name, value, reason string) {
		errs = append(errs, &bridge.ConfigError{Var: "BRIDGE_" + name, Value: value, Reason: reason})
	}
	if len(b.Transports) == 0 {
		b.Transports = defaultTransports(svc)
	}
	var carriers []string
	for i, name := range b.Transports {
		t, ok := transportNamed(name)
		switch {
		case !ok:
			fail("BENCH_TRANSPORTS", name, "each must be one of "+strings.Join(Transports(), ", "))
		case slices.Contains(b.Transports[:i], name):
			fail("BENCH_TRANSPORTS", name, "listed twice")
		case t.broker != nil && !t.broker.set(svc):
			fail(t.broker.name, "", "required with "+name+" in BRIDGE_BENCH_TRANSPORTS"+t.broker.takes)
		case !slices.Contains(carriers, t.carrier):
			carriers = append(carriers, t.carrier)
		}
	}
	// The bench's tcp listens on a free loopback port of its own.
	local := *svc
	local.TCPAddr = "127.0.0.1:0"
	errs = append(errs, local.ValidateTransports(carriers...))

	if len(b.Size) == 0 {
		fail("BENCH_SIZE", "", "at least one size")
	}
	if b.TraceSample < 0 || b.TraceSample > 1 {
		fail("BENCH_TRACE_SAMPLE", strconv.FormatFloat(b.TraceSample, 'g', -1, 64), "a share of messages, from 0 to 1")
	}
	for _, size := range b.Size {
		if size < minSize || size > maxSize || size > svc.MaxMessageSize {
			fail("BENCH_SIZE", strconv.Itoa(size), "each must be from 32 (a message holds its number and timestamp) to 1000000 (a raw client sends it as one broker message) and at most BRIDGE_MAX_MESSAGE_SIZE")
		}
	}
	if b.Count <= 0 {
		fail("BENCH_COUNT", strconv.Itoa(b.Count), "must be positive")
	}
	if b.MaxBytes < 0 {
		fail("BENCH_MAX_BYTES", strconv.FormatInt(b.MaxBytes, 10), "must not be negative (0: no bound)")
	}
	if b.Rounds < 1 || (b.Count > 0 && b.Rounds > b.Count) {
		fail("BENCH_ROUNDS", strconv.Itoa(b.Rounds), "must be from 1 to BRIDGE_BENCH_COUNT")
	}
	for _, size := range b.Size {
		if n := b.countFor(size); b.Count > 0 && b.Rounds >= 1 && size > 0 && n < b.Rounds {
			fail("BENCH_MAX_BYTES", strconv.FormatInt(b.MaxBytes, 10), fmt.Sprintf("leaves %d messages of %d bytes, fewer than BRIDGE_BENCH_ROUNDS", n, size))
		}
	}
	if b.Window < 0 || b.Window > delivery.MaxWindow {
		fail("BENCH_WINDOW", strconv.Itoa(b.Window), "must be from 1 to "+strconv.Itoa(delivery.MaxWindow)+" (unset: the protocol's default)")
	}
	if b.Rate < 0 {
		fail("BENCH_RATE", strconv.FormatFloat(b.Rate, 'g', -1, 64), "must not be negative (0: as fast as possible)")
	}
	b.validateScenario(svc, fail)
	if b.Format != "table" && b.Format != "json" {
		fail("BENCH_FORMAT", b.Format, "must be one of table, json")
	}
	for _, out := range []struct{ name, file string }{{"BENCH_REPORT", b.Report}, {"BENCH_CPU_PROFILE", b.CPUProfile}} {
		if fi, err := os.Stat(filepath.Dir(out.file)); out.file != "" && (err != nil || !fi.IsDir()) {
			fail(out.name, out.file, "its directory must exist")
		}
	}
	return errors.Join(errs...)
}

// countFor is how many messages of size a run sends: BRIDGE_BENCH_COUNT,
// or fewer when they would exceed BRIDGE_BENCH_MAX_BYTES.
func (b *Config) countFor(size int) int {
	if b.MaxBytes > 0 && size > 0 && int64(b.Count)*int64(size) > b.MaxBytes {
		return int(b.MaxBytes / int64(size))
	}
	return b.Count
}

// defaultTransports are tcp and NATS, with RabbitMQ and Kafka when the
// configuration says where they are.
func defaultTransports(svc *bridge.Config) []string {
	var names []string
	for _, t := range transports {
		if t.byDefault && (t.broker == nil || t.broker.set(svc)) {
			names = append(names, t.name)
		}
	}
	return names
}

// The scenarios of BRIDGE_BENCH_SCENARIO.
const (
	scenarioPointToPoint = "point-to-point"
	scenarioWorkPulling  = "work-pulling"
)

// validateScenario checks BRIDGE_BENCH_SCENARIO and, for work pulling, its
// settings, refusing the point-to-point modes' that it does not run.
func (b *Config) validateScenario(svc *bridge.Config, fail func(name, value, reason string)) {
	switch b.Scenario {
	case scenarioPointToPoint:
		return
	case scenarioWorkPulling:
	default:
		fail("BENCH_SCENARIO", b.Scenario, "must be one of point-to-point, work-pulling")
		return
	}
	if len(b.Workers) == 0 {
		fail("BENCH_WORKERS", "", "at least one count of workers")
	}
	for i, n := range b.Workers {
		switch {
		case n < 1 || n > svc.MaxWorkers:
			fail("BENCH_WORKERS", strconv.Itoa(n), "each must be from 1 to BRIDGE_MAX_WORKERS ("+strconv.Itoa(svc.MaxWorkers)+")")
		case slices.Contains(b.Workers[:i], n):
			fail("BENCH_WORKERS", strconv.Itoa(n), "listed twice")
		}
	}
	if b.SinkCost < 0 || b.SinkCost > time.Second {
		fail("BENCH_SINK_COST", b.SinkCost.String(), "must be from 0 to 1s")
	}
	if len(b.Size) > 1 {
		fail("BENCH_SIZE", fmt.Sprint(b.Size), "one size with BRIDGE_BENCH_SCENARIO=work-pulling")
	}
	if b.Count < 4 {
		fail("BENCH_COUNT", strconv.Itoa(b.Count), "at least 4 with BRIDGE_BENCH_SCENARIO=work-pulling")
	}
	only := map[string]bool{"BENCH_DURABLE": b.Durable, "BENCH_SEALED": b.Sealed, "BENCH_HEADERS": b.Headers,
		"BENCH_TRACE_SAMPLE": b.TraceSample > 0, "BENCH_RATE": b.Rate > 0}
	for _, name := range slices.Sorted(maps.Keys(only)) {
		if only[name] {
			fail(name, "", "point-to-point only: not with BRIDGE_BENCH_SCENARIO=work-pulling")
		}
	}
}

// window is BRIDGE_BENCH_WINDOW, or when it is unset the protocol's
// default for the scenario: a point-to-point consumer's window, or a
// work-pulling worker's demand.
func (b *Config) window() int {
	switch {
	case b.Window > 0:
		return b.Window
	case b.Scenario == scenarioWorkPulling:
		return delivery.DefaultWorkerWindow
	}
	return delivery.DefaultWindow
}
