package bench

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/delivery"
)

func TestDefaultTransports(t *testing.T) {
	var b Config
	cfg, err := bridge.LoadConfig(&b)
	if err != nil {
		t.Fatal(err)
	}
	b.Transports, cfg.AMQPURL, cfg.KafkaBrokers = nil, "", nil
	if err := b.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp", "nats"}; !slices.Equal(b.Transports, want) {
		t.Errorf("no broker configured: %v, want %v", b.Transports, want)
	}
	b.Transports = nil
	cfg.AMQPURL, cfg.KafkaBrokers = "amqp://guest:guest@localhost:5672/", []string{"localhost:9092"}
	if err := b.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp", "nats", "amqp", "kafka"}; !slices.Equal(b.Transports, want) {
		t.Errorf("RabbitMQ and Kafka configured: %v, want %v", b.Transports, want)
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

func TestCountFor(t *testing.T) {
	b := Config{Count: 100_000, MaxBytes: 1 << 30}
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

// TestWindowDefaultIsTheProtocols: the bench's window defaults to the
// protocol's, as the service's does: a consumer's, or in the work-pulling
// scenario a worker's.
func TestWindowDefaultIsTheProtocols(t *testing.T) {
	var b Config
	if got := b.window(); got != delivery.DefaultWindow {
		t.Errorf("BRIDGE_BENCH_WINDOW unset gives %d; the protocol's window is %d", got, delivery.DefaultWindow)
	}
	b.Scenario = scenarioWorkPulling
	if got := b.window(); got != delivery.DefaultWorkerWindow {
		t.Errorf("BRIDGE_BENCH_WINDOW unset gives workers %d; the protocol's worker window is %d", got, delivery.DefaultWorkerWindow)
	}
	b.Window = 20
	if got := b.window(); got != 20 {
		t.Errorf("BRIDGE_BENCH_WINDOW=20 gives %d", got)
	}
}
