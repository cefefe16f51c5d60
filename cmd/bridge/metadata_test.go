package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchHeadersAndTraced: with BRIDGE_BENCH_HEADERS and
// BRIDGE_BENCH_TRACE_SAMPLE the bench runs a headers mode and a traced
// mode beside raw and reliable on the same carrier, every message in.
func TestBenchHeadersAndTraced(t *testing.T) {
	code, stdout, stderr := output(t, []string{"bench"}, "BRIDGE_BENCH_TRANSPORTS=tcp", "BRIDGE_BENCH_COUNT=2000",
		"BRIDGE_BENCH_ROUNDS=1", "BRIDGE_BENCH_HEADERS=true", "BRIDGE_BENCH_TRACE_SAMPLE=0.5", "BRIDGE_BENCH_FORMAT=json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var rows []struct {
		Mode     string   `json:"mode"`
		Client   string   `json:"client"`
		Messages int      `json:"messages"`
		Ratio    *float64 `json:"ratio"`
	}
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, r := range rows {
		modes = append(modes, r.Mode)
		if r.Messages != 2000 || r.Mode != "raw" && r.Ratio == nil {
			t.Errorf("%s: %d messages in, ratio %v; want 2000 and a ratio", r.Mode, r.Messages, r.Ratio)
		}
	}
	if strings.Join(modes, ",") != "raw,reliable,headers,traced" {
		t.Fatalf("modes %v; want raw, reliable, headers and traced", modes)
	}
	if !strings.Contains(rows[2].Client, "three headers") || !strings.Contains(rows[3].Client, "50% of messages sampled") {
		t.Errorf("the clients are %q and %q", rows[2].Client, rows[3].Client)
	}
}
