package bridge

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBenchDefaultTransports(t *testing.T) {
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bench.Transports, cfg.AMQPURL, cfg.KafkaBrokers = nil, "", nil
	if err := cfg.ValidateBench(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp", "nats"}; !slices.Equal(cfg.Bench.Transports, want) {
		t.Errorf("no broker configured: %v, want %v", cfg.Bench.Transports, want)
	}
	cfg.Bench.Transports = nil
	cfg.AMQPURL, cfg.KafkaBrokers = "amqp://guest:guest@localhost:5672/", []string{"localhost:9092"}
	if err := cfg.ValidateBench(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp", "nats", "amqp", "kafka"}; !slices.Equal(cfg.Bench.Transports, want) {
		t.Errorf("RabbitMQ and Kafka configured: %v, want %v", cfg.Bench.Transports, want)
	}
}

// TestGeneratedSizes: a generated message is exactly its size, whatever the
// size, and reads back its number and time.
func TestGeneratedSizes(t *testing.T) {
	at := time.Unix(1_790_000_000, 123456789)
	for _, size := range []int{minBenchSize, 128, 64 << 10, 64<<10 + 1, maxBenchSize} {
		msg := generated(123456, size, at)
		i, got, ok := parseGenerated(msg)
		if len(msg) != size || !ok || i != 123456 || !got.Equal(at) {
			t.Errorf("size %d: %d bytes, number %d, time %v, ok %v", size, len(msg), i, got, ok)
		}
		if bytes.Count(msg, []byte{'x'}) != size-len(generated(123456, 0, at)) {
			t.Errorf("size %d: padding is not all 'x'", size)
		}
	}
}

func TestSetRatios(t *testing.T) {
	rows := []benchRow{
		{Transport: "tcp", Size: 128, Mode: modeRaw, MsgsPerSec: 1000},
		{Transport: "tcp", Size: 128, Mode: modeReliable, MsgsPerSec: 1500},
		{Transport: "tcp", Size: 128, Mode: modeDurable, MsgsPerSec: 333},
		{Transport: "tcp", Size: 4096, Mode: modeReliable, MsgsPerSec: 10},
		{Transport: "nats", Size: 128, Mode: modeRaw, MsgsPerSec: 3},
		{Transport: "nats", Size: 128, Mode: modeReliable, MsgsPerSec: 2},
	}
	setRatios(rows)
	want := []float64{-1, 1.5, 0.333, -1, -1, 0.667} // -1: none
	for i, r := range rows {
		got := -1.0
		if r.Ratio != nil {
			got = *r.Ratio
		}
		if got != want[i] {
			t.Errorf("row %d (%s %d %s): ratio %v, want %v", i, r.Transport, r.Size, r.Mode, got, want[i])
		}
	}
}

func TestKafkaBrokerLabel(t *testing.T) {
	for _, tc := range []struct{ label, cluster, want string }{
		{"", "kfake", "kfake (test broker)"},
		{"kfake", "kfake", "kfake (test broker)"},
		{"production Kafka", "kfake", "production Kafka (test broker)"},
		{"kfake, a test broker", "kfake", "kfake, a test broker"},
		{"", "abc123", "Kafka cluster abc123"},
		{"Kafka 3.7, 3 brokers", "abc123", "Kafka 3.7, 3 brokers"},
	} {
		if got := kafkaBrokerLabel(tc.label, tc.cluster); got != tc.want {
			t.Errorf("label %q, cluster %q: %q, want %q", tc.label, tc.cluster, got, tc.want)
		}
	}
}

// sampleRows are two transports' rows, the second on kfake.
func sampleRows() []benchRow {
	ratio, resends := 1.25, uint64(0)
	cpu := 0.5
	spread := []float64{0.01, 0.1, 0.2, 0.3, 0.5, 1, 3}
	rows := []benchRow{
		{Transport: "tcp", Broker: "loopback", Client: "link", Size: 128, Mode: modeRaw, MsgsPerSec: 1000, P50ms: 0.2, P99ms: 1, MaxMs: 3, CPUSeconds: &cpu, spread: spread},
		{Transport: "tcp", Broker: "loopback", Size: 128, Mode: modeReliable, MsgsPerSec: 1250, Ratio: &ratio, Resends: &resends, spread: spread},
		{Transport: "kafka", Broker: "kfake (test broker)", Client: "kafka-go", Note: kfakeNote, Size: 128, Mode: modeRaw, MsgsPerSec: 800, spread: spread},
		{Transport: "kafka", Broker: "kfake (test broker)", Note: kfakeNote, Size: 128, Mode: modeReliable, MsgsPerSec: 1000, Ratio: &ratio, Resends: &resends, spread: spread},
	}
	return rows
}

func TestBenchTableLabelsTestBroker(t *testing.T) {
	var b strings.Builder
	if err := writeTable(&b, sampleRows(), benchAbout{Date: "2026-11-22", Machine: "2 cores", Workload: "w"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"2026-11-22: 2 cores", "kafka on kfake (test broker); raw: kafka-go", "* note: kfake is a test broker", "kafka*", "1.25"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchReportIsSelfContained checks the report's text: it refers to
// nothing outside itself, forbids the browser to fetch anything, and
// labels a test broker in its charts and its text.
func TestBenchReportIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := writeReport(&b, sampleRows(), benchAbout{Date: "2026-11-22", Machine: "2 cores", Workload: "w"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, banned := range []string{"<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe"} {
		if strings.Contains(page, banned) {
			t.Errorf("the report contains %q: it must need nothing outside itself", banned)
		}
	}
	for _, want := range []string{
		`http-equiv="Content-Security-Policy" content="default-src 'none'`,
		`<svg class="chart throughput"`, `<svg class="chart latency"`,
		"(test broker)", "Note: kfake is a test broker", "×1.25",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 60); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquiring past the budget: %v, want to wait until the deadline", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.acquire(ctx, 60) }()
	b.release(60)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	go func() { got <- b.drained(ctx) }()
	b.release(60)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := b.acquire(ctx, 500); err != nil { // larger than the budget: alone
		t.Fatal(err)
	}
}

func TestCompactAndTicks(t *testing.T) {
	for v, want := range map[float64]string{950: "950", 12_500: "12.5k", 20_000: "20k", 1_230_000: "1.23M", 2_000_000: "2M"} {
		if got := compact(v); got != want {
			t.Errorf("compact(%v) = %q, want %q", v, got, want)
		}
	}
	ticks := niceTicks(1_234_567)
	if ticks[0] != 0 || ticks[len(ticks)-1] < 1_234_567 || len(ticks) > 7 {
		t.Errorf("ticks for 1234567: %v", ticks)
	}
}

func TestBenchCountFor(t *testing.T) {
	b := BenchConfig{Count: 100_000, MaxBytes: 1 << 30}
	for size, want := range map[int]int{128: 100_000, 64 << 10: 16_384, 1_000_000: 1073} {
		if got := b.countFor(size); got != want {
			t.Errorf("size %d: %d messages, want %d", size, got, want)
		}
	}
	b.MaxBytes = 0
	if got := b.countFor(1_000_000); got != 100_000 {
		t.Errorf("no bound: %d messages, want 100000", got)
	}
}
