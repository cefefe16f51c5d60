package bench

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// TestWorkPullingScenarioTCP runs the scenario over tcp, short: a row per
// count of workers and the kill pass, nothing lost, each worker's messages
// in order, and the table has them.
func TestWorkPullingScenarioTCP(t *testing.T) {
	var b Config
	cfg, err := bridge.LoadConfig(&b)
	if err != nil {
		t.Fatal(err)
	}
	b.Scenario, b.Transports, b.Count, b.Workers, b.Window, b.SinkCost = scenarioWorkPulling, []string{"tcp"}, 200, []int{1, 2}, 20, time.Millisecond
	cfg.WorkerTimeout = 300 * time.Millisecond // the kill pass waits this long for the dead worker
	if err := b.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rows, err := runWorkPulling(ctx, cfg, b, log, newProgress(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	report.SetRatios(rows)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (1 and 2 workers, the kill pass): %+v", len(rows), rows)
	}
	for _, r := range rows {
		if r.Mode != report.WorkPulling || r.Lost != 0 || r.OutOfOrder != 0 && r.Killed == 0 {
			t.Errorf("%s, %d workers, %d killed: %d lost, %d out of order", r.Mode, r.Workers, r.Killed, r.Lost, r.OutOfOrder)
		}
	}
	if rows[2].Killed != 1 || rows[2].Workers != 2 {
		t.Errorf("the kill pass: %+v", rows[2])
	}
	if rows[1].Scaling == nil {
		t.Error("2 workers: no scaling")
	}
	var out strings.Builder
	if err := report.WriteTable(&out, rows, describeBench(&b)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "work-pulling") || !strings.Contains(out.String(), "per worker") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestWorkPullingValidate(t *testing.T) {
	var b Config
	cfg, err := bridge.LoadConfig(&b)
	if err != nil {
		t.Fatal(err)
	}
	b.Transports, b.Scenario, b.Workers, b.SinkCost, b.Size, b.Durable = []string{"tcp"}, scenarioWorkPulling, []int{0, 2, 2}, -time.Millisecond, []int{128, 256}, true
	err = b.Validate(&cfg)
	for _, want := range []string{"BRIDGE_BENCH_WORKERS", "listed twice", "BRIDGE_BENCH_SINK_COST", "one size", "BRIDGE_BENCH_DURABLE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	b.Scenario = "fan-out"
	if err := b.Validate(&cfg); err == nil || !strings.Contains(err.Error(), "BRIDGE_BENCH_SCENARIO") {
		t.Errorf("an unknown scenario: %v", err)
	}
}
