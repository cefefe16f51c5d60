package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

func TestWorkPullingConfig(t *testing.T) {
	base := func() Config {
		return Config{Role: "consumer", Transport: "tcp", TCPListen: "producer", Stream: "s", Mode: modeWorkPulling, WorkerTimeout: time.Second, MaxWorkers: 4}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // a variable the error names; "" for none
	}{
		{"ok", func(*Config) {}, ""},
		{"mode", func(c *Config) { c.Mode = "fan-out" }, "BRIDGE_MODE"},
		{"tcp listens on the consumer", func(c *Config) { c.TCPListen = "consumer" }, "BRIDGE_TCP_LISTEN"},
		{"worker ID", func(c *Config) { c.WorkerID = "a.b" }, "BRIDGE_WORKER_ID"},
		{"worker ID on the producer", func(c *Config) { c.Role, c.WorkerID = "producer", "a" }, "BRIDGE_WORKER_ID"},
		{"worker ID in point-to-point", func(c *Config) { c.Mode, c.WorkerID = modePointToPoint, "a" }, "BRIDGE_WORKER_ID"},
		{"only flow control", func(c *Config) { c.OnlyFlowControl = true }, "BRIDGE_ONLY_FLOW_CONTROL"},
		{"long stream", func(c *Config) { c.Stream = strings.Repeat("s", 49) }, "BRIDGE_STREAM"},
		{"timeout", func(c *Config) { c.WorkerTimeout = time.Millisecond }, "BRIDGE_WORKER_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.change(&cfg)
			var c checker
			cfg.checkMode(&c)
			err := c.err()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("want an error naming %s, got %v", tc.want, err)
			}
			if tc.name == "ok" && delivery.CheckWorkerID(cfg.WorkerID) != nil {
				t.Errorf("default worker ID %q is not valid", cfg.WorkerID)
			}
		})
	}
}

func TestWorkPullingMetrics(t *testing.T) {
	m := newMetrics(&Config{Stream: "s", Role: "producer", Transport: "tcp"})
	m.watchWorkPulling(func() delivery.WorkPullingStats {
		return delivery.WorkPullingStats{Taken: 10, Confirmed: 7, Unconfirmed: 3, Workers: []delivery.WorkerStats{
			{ID: "a", Demand: 5, InFlight: 2}, {ID: "b", Demand: 0, InFlight: 1},
		}}
	}, statusLink(func() delivery.LinkStatus { return delivery.LinkStatus{Connected: true} }))
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				if l.GetName() == "worker" {
					key += "/" + l.GetValue()
				}
			}
			got[key] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"bridge_worker_demand/a": 5, "bridge_worker_demand/b": 0,
		"bridge_worker_in_flight/a": 2, "bridge_worker_in_flight/b": 1,
		"bridge_workers": 2, "bridge_unconfirmed": 3, "bridge_messages_taken_total": 10,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}

func TestWorkPullingReplayNeedsURL(t *testing.T) {
	cfg := Config{Stream: "s", Transport: "tcp", Mode: modeWorkPulling, DLQ: "file:///tmp/x"}
	if err := cfg.ValidateDLQ(true); err == nil || !strings.Contains(err.Error(), "BRIDGE_DLQ_REPLAY_URL") {
		t.Errorf("replay in work pulling without a URL: %v", err)
	}
}
