package kafka

import (
	"log/slog"
	"testing"
)

// The Reader must redial at once after dropping its connection: kafka-go
// drops it on an ordinary fetch answer (ReaderRedialBackoff says which),
// and its own default wait of 100 ms then stalls the stream, every second
// or two under load. Only the first wait is short; later ones grow to
// Config.RetryBackoff, so a broker that is down is not dialled in a loop.
func TestReaderRedialsAtOnce(t *testing.T) {
	cfg, err := Config{Brokers: []string{"127.0.0.1:1"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(&cfg, newConnTracker(cfg.DialTimeout, slog.Default()), "topic", cfg.MaxMessageBytes, 0, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.Config()
	if got.ReadBackoffMin != ReaderRedialBackoff || got.ReadBackoffMax != cfg.RetryBackoff {
		t.Errorf("reader backoff %v to %v, want %v to %v", got.ReadBackoffMin, got.ReadBackoffMax, ReaderRedialBackoff, cfg.RetryBackoff)
	}
}
