package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// TestWorkPullingScenarioBrokers runs the scenario, short, over every
// broker against its competing consumers: NATS and JetStream (an embedded
// server), RabbitMQ and Apache Kafka (those of `make brokers`; kfake only
// in a plain `go test` with no Kafka). Each mechanism moves every message
// with 1 and 2 workers, and, a worker killed, loses nothing, but for core
// NATS's queue group, which is at most once.
func TestWorkPullingScenarioBrokers(t *testing.T) {
	amqpURL := adaptertest.RabbitMQ(t)
	brokers, _ := adaptertest.KafkaOrKfake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nats, err := natscarrier.StartServer(ctx, natscarrier.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer nats.Shutdown()

	var b Config
	cfg, err := bridge.LoadConfig(&b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATSURL, cfg.AMQPURL, cfg.KafkaBrokers = nats.URL(), amqpURL, brokers
	cfg.AMQPQueuePrefix = fmt.Sprintf("bench-wp-test-%d", time.Now().UnixNano())
	// The kill pass waits this long for the dead worker; shorter, a live
	// worker on a loaded machine can be taken for dead, and its messages
	// handed to another arrive twice.
	cfg.WorkerTimeout = 3 * time.Second
	b.Scenario, b.Transports, b.Count, b.Workers, b.Window, b.SinkCost = scenarioWorkPulling, []string{"nats", "jetstream", "amqp", "kafka"}, 200, []int{1, 2}, 20, time.Millisecond
	if err := b.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rows, err := runWorkPulling(ctx, cfg, b, log, newProgress(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	report.SetRatios(rows)
	seen := map[string]int{}
	for _, r := range rows {
		name := fmt.Sprintf("%s %s, %d workers, %d killed", r.Transport, r.Mode, r.Workers, r.Killed)
		seen[r.Transport+" "+r.Mode]++
		atMostOnce := r.Transport == "nats" && r.Mode == report.Competing
		if r.Lost != 0 && !(atMostOnce && r.Killed > 0) {
			t.Errorf("%s: %d of %d lost", name, r.Lost, b.Count)
		}
		if r.Killed == 0 && (r.MsgsPerSec <= 0 || r.Scaling == nil || r.Mode == report.WorkPulling && r.Ratio == nil) {
			t.Errorf("%s: %v msgs/s, scaling %v, ratio %v", name, r.MsgsPerSec, r.Scaling, r.Ratio)
		}
		if r.Mode == report.WorkPulling && r.OutOfOrder != 0 && r.Killed == 0 {
			t.Errorf("%s: %d out of its worker's order", name, r.OutOfOrder)
		}
	}
	for _, tr := range b.Transports {
		for _, mode := range []string{report.Competing, report.WorkPulling} {
			if seen[tr+" "+mode] != 3 {
				t.Errorf("%s %s: %d rows, want 3 (1 and 2 workers, the kill pass)", tr, mode, seen[tr+" "+mode])
			}
		}
	}
}
