package main_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// benchCount and benchSizes are the tests' workload: small, but each run
// still spans many windows and frames.
const benchCount = 3000

var benchSizes = []int{128, 4096}

// benchResult is the outcome of one `bridge bench` run over the default
// transports (tcp and the embedded NATS) with JSON output and a report.
type benchResult struct {
	stdout, stderr string
	report         string // the HTML report's path
}

// runBench runs the bench over the default transports, count messages of
// each of benchSizes, and fails t unless it exits 0.
func runBench(t *testing.T, count int) benchResult {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.html")
	code, stdout, stderr := output(t, []string{"bench"},
		"BRIDGE_BENCH_FORMAT=json",
		"BRIDGE_BENCH_COUNT="+strconv.Itoa(count),
		"BRIDGE_BENCH_SIZE=128,4096",
		"BRIDGE_BENCH_REPORT="+report)
	if code != 0 {
		t.Fatalf("bridge bench exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	return benchResult{stdout: stdout, stderr: stderr, report: report}
}

// benchKeys are the keys every JSON row has, whatever its mode.
var benchKeys = []string{
	"transport", "broker", "mode", "client", "size", "window", "rate", "rounds",
	"messages", "lost", "seconds", "msgs_per_sec", "mb_per_sec",
	"p50_ms", "p90_ms", "p99_ms", "max_ms", "cpu_seconds", "cpu_ns_per_msg", "peak_heap_mb",
	"resends", "duplicates", "ratio", "note",
}

type benchJSONRow struct {
	Transport  string   `json:"transport"`
	Broker     string   `json:"broker"`
	Mode       string   `json:"mode"`
	Size       int      `json:"size"`
	Messages   int      `json:"messages"`
	Lost       int      `json:"lost"`
	Seconds    float64  `json:"seconds"`
	MsgsPerSec float64  `json:"msgs_per_sec"`
	MBPerSec   float64  `json:"mb_per_sec"`
	P50        float64  `json:"p50_ms"`
	P90        float64  `json:"p90_ms"`
	P99        float64  `json:"p99_ms"`
	Max        float64  `json:"max_ms"`
	CPU        *float64 `json:"cpu_seconds"`
	CPUPerMsg  *float64 `json:"cpu_ns_per_msg"`
	Heap       float64  `json:"peak_heap_mb"`
	Resends    *uint64  `json:"resends"`
	Duplicates uint64   `json:"duplicates"`
	Ratio      *float64 `json:"ratio"`
}

// TestBenchJSON runs the bench over tcp and the embedded NATS and checks
// that the JSON has every field for both modes, with sane values: every
// message in, positive rates, ordered percentiles, ratio = reliable/raw.
func TestBenchJSON(t *testing.T) {
	res := runBench(t, benchCount)
	var generic []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &generic); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, res.stdout)
	}
	var rows []benchJSONRow
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(benchSizes) * 2; len(rows) != want {
		t.Fatalf("%d rows, want %d (tcp and nats, 2 sizes, raw and reliable):\n%s", len(rows), want, res.stdout)
	}
	for i, g := range generic {
		for _, k := range benchKeys {
			if _, ok := g[k]; !ok {
				t.Errorf("row %d (%v %v %v) has no %q", i, g["transport"], g["size"], g["mode"], k)
			}
		}
	}
	byKey := map[string]benchJSONRow{}
	for _, r := range rows {
		name := r.Transport + "/" + strconv.Itoa(r.Size) + "/" + r.Mode
		byKey[name] = r
		switch {
		case r.Messages != benchCount || r.Lost != 0:
			t.Errorf("%s: %d messages in, %d lost; want %d, 0", name, r.Messages, r.Lost, benchCount)
		case r.Seconds <= 0 || r.MsgsPerSec <= 0 || r.MBPerSec <= 0:
			t.Errorf("%s: seconds %v, msgs/s %v, MB/s %v: want positive", name, r.Seconds, r.MsgsPerSec, r.MBPerSec)
		case !(0 < r.P50 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max):
			t.Errorf("%s: latency p50 %v, p90 %v, p99 %v, max %v: want 0 < p50 <= p90 <= p99 <= max", name, r.P50, r.P90, r.P99, r.Max)
		case r.CPU == nil || *r.CPU <= 0 || r.Heap <= 0:
			t.Errorf("%s: cpu %v s, heap %v MB: want positive", name, r.CPU, r.Heap)
		case r.CPUPerMsg == nil || r.Messages > 0 && math.Abs(*r.CPUPerMsg-*r.CPU*1e9/float64(r.Messages)) > 0.5e6/float64(r.Messages)+1: // cpu_seconds is rounded to 1 ms
			t.Errorf("%s: %v CPU ns/msg; want %v s over %d messages", name, r.CPUPerMsg, *r.CPU, r.Messages)
		case r.Broker == "":
			t.Errorf("%s: no broker named", name)
		}
		if rate := float64(r.Messages) / r.Seconds; math.Abs(rate-r.MsgsPerSec) > 0.01*rate {
			t.Errorf("%s: msgs_per_sec %v, but %d messages in %v s is %v", name, r.MsgsPerSec, r.Messages, r.Seconds, rate)
		}
		if mb := r.MsgsPerSec * float64(r.Size) / 1e6; math.Abs(mb-r.MBPerSec) > 0.01+0.001*mb {
			t.Errorf("%s: mb_per_sec %v, want %v", name, r.MBPerSec, mb)
		}
		if r.Mode == "raw" && (r.Ratio != nil || r.Resends != nil) {
			t.Errorf("%s: a raw row has ratio %v and resends %v, want null", name, r.Ratio, r.Resends)
		}
		if r.Mode == "reliable" && r.Resends == nil {
			t.Errorf("%s: no resends", name)
		}
	}
	for _, transport := range []string{"tcp", "nats"} {
		for _, size := range benchSizes {
			key := transport + "/" + strconv.Itoa(size) + "/"
			raw, ok1 := byKey[key+"raw"]
			rel, ok2 := byKey[key+"reliable"]
			if !ok1 || !ok2 {
				t.Errorf("%s: raw row %v, reliable row %v: want both", key, ok1, ok2)
				continue
			}
			want := rel.MsgsPerSec / raw.MsgsPerSec
			if rel.Ratio == nil || math.Abs(*rel.Ratio-want) > 0.0006 {
				t.Errorf("%s: ratio %v, want reliable/raw = %v / %v = %.4f", key, rel.Ratio, rel.MsgsPerSec, raw.MsgsPerSec, want)
			}
		}
	}
	if !strings.Contains(res.stderr, "bench tcp 128 B raw, round 1/2: ") || !strings.Contains(res.stderr, "bench nats 4 KiB reliable, round 2/2: ") {
		t.Errorf("no progress lines on stderr:\n%s", res.stderr)
	}
}

// TestBenchTable checks the default output: a table with a row per mode,
// and what each raw client was; and that BRIDGE_BENCH_CPU_PROFILE writes a
// profile whose samples say which mode they were taken in.
func TestBenchTable(t *testing.T) {
	cpuProfile := filepath.Join(t.TempDir(), "cpu.pprof")
	code, stdout, stderr := output(t, []string{"bench"}, "BRIDGE_BENCH_TRANSPORTS=tcp", "BRIDGE_BENCH_COUNT=100000", "BRIDGE_BENCH_ROUNDS=1",
		"BRIDGE_BENCH_HEADERS=true", "BRIDGE_BENCH_CPU_PROFILE="+cpuProfile)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	checkProfileModes(t, cpuProfile, "raw", "reliable", "headers")
	lines := strings.Split(stdout, "\n")
	var header, raw, reliable bool
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) > 3 && f[0] == "transport" && strings.Contains(l, "msgs/s") && strings.Contains(l, "ratio"):
			header = true
		case len(f) == 17 && f[0] == "tcp" && f[3] == "raw" && f[16] == "-":
			raw = true
		case len(f) == 17 && f[0] == "tcp" && f[3] == "reliable" && f[16] != "-":
			reliable = true
		}
	}
	if !header || !raw || !reliable {
		t.Errorf("header %v, raw row %v, reliable row %v; want all:\n%s", header, raw, reliable, stdout)
	}
	if !strings.Contains(stdout, "cores") || !strings.Contains(stdout, "raw: the tcp carrier's link") {
		t.Errorf("the table does not say on what machine it ran and what raw was:\n%s", stdout)
	}
}

// checkProfileModes fails t unless the CPU profile at file has samples
// labelled with each of modes.
func checkProfileModes(t *testing.T, file string, modes ...string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("BRIDGE_BENCH_CPU_PROFILE: %v", err)
	}
	defer f.Close()
	prof, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("BRIDGE_BENCH_CPU_PROFILE: %v", err)
	}
	seen := map[string]bool{}
	for _, s := range prof.Sample {
		for _, mode := range s.Label["mode"] {
			seen[mode] = true
		}
	}
	for _, mode := range modes {
		if !seen[mode] {
			t.Errorf("the CPU profile has no sample labelled mode=%s (it has %v)", mode, seen)
		}
	}
}

// TestBenchConfigErrors checks that a bad bench setting exits 2 naming the
// variable, before anything runs.
func TestBenchConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		vars []string
		want string
	}{
		{[]string{"BRIDGE_BENCH_TRANSPORTS=tcp,rabbit"}, `BRIDGE_BENCH_TRANSPORTS="rabbit"`},
		{[]string{"BRIDGE_BENCH_TRANSPORTS=tcp,tcp"}, "listed twice"},
		{[]string{"BRIDGE_BENCH_TRANSPORTS=amqp"}, "BRIDGE_AMQP_URL: required with amqp in BRIDGE_BENCH_TRANSPORTS"},
		{[]string{"BRIDGE_BENCH_TRANSPORTS=kafka"}, "BRIDGE_KAFKA_BROKERS: required with kafka"},
		{[]string{"BRIDGE_BENCH_SIZE=128,8"}, `BRIDGE_BENCH_SIZE="8"`},
		{[]string{"BRIDGE_BENCH_SIZE=2000000"}, `BRIDGE_BENCH_SIZE="2000000"`},
		{[]string{"BRIDGE_BENCH_COUNT=0"}, `BRIDGE_BENCH_COUNT="0"`},
		{[]string{"BRIDGE_BENCH_COUNT=10", "BRIDGE_BENCH_ROUNDS=11"}, `BRIDGE_BENCH_ROUNDS="11"`},
		{[]string{"BRIDGE_BENCH_MAX_BYTES=100", "BRIDGE_BENCH_SIZE=128"}, `BRIDGE_BENCH_MAX_BYTES="100": leaves 0 messages`},
		{[]string{"BRIDGE_BENCH_RATE=-1"}, `BRIDGE_BENCH_RATE="-1"`},
		{[]string{"BRIDGE_BENCH_TRACE_SAMPLE=2"}, `BRIDGE_BENCH_TRACE_SAMPLE="2"`},
		{[]string{"BRIDGE_BENCH_FORMAT=csv"}, `BRIDGE_BENCH_FORMAT="csv"`},
		{[]string{"BRIDGE_BENCH_REPORT=/no/such/dir/r.html"}, "BRIDGE_BENCH_REPORT"},
		{[]string{"BRIDGE_BENCH_CPU_PROFILE=/no/such/dir/cpu.pprof"}, `BRIDGE_BENCH_CPU_PROFILE="/no/such/dir/cpu.pprof": its directory must exist`},
		{[]string{"BRIDGE_BENCH_WINDOWS=5"}, "did you mean BRIDGE_BENCH_WINDOW?"},
	} {
		code, stdout, stderr := output(t, []string{"bench"}, tc.vars...)
		if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2, naming %q, nothing on stdout", tc.vars, code, stderr, stdout, tc.want)
		}
	}
}
