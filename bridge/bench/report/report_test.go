package report

import (
	"bytes"
	"strings"
	"testing"
)

// kfakeNote stands for the note the bench gives rows measured on kfake.
const kfakeNote = "kfake is a test broker (no replication, persistence or throttling)"

func TestSetRatios(t *testing.T) {
	rows := []Row{
		{Transport: "tcp", Size: 128, Mode: Raw, MsgsPerSec: 1000},
		{Transport: "tcp", Size: 128, Mode: Reliable, MsgsPerSec: 1500},
		{Transport: "tcp", Size: 128, Mode: Durable, MsgsPerSec: 333},
		{Transport: "tcp", Size: 4096, Mode: Reliable, MsgsPerSec: 10},
		{Transport: "nats", Size: 128, Mode: Raw, MsgsPerSec: 3},
		{Transport: "nats", Size: 128, Mode: Reliable, MsgsPerSec: 2},
	}
	SetRatios(rows)
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

// sampleRows are two transports' rows, the second on kfake.
func sampleRows() []Row {
	ratio, resends := 1.25, uint64(0)
	cpu := 0.5
	spread := []float64{0.01, 0.1, 0.2, 0.3, 0.5, 1, 3}
	rows := []Row{
		{Transport: "tcp", Broker: "loopback", Client: "link", Size: 128, Mode: Raw, MsgsPerSec: 1000, P50ms: 0.2, P99ms: 1, MaxMs: 3, CPUSeconds: &cpu, Spread: spread},
		{Transport: "tcp", Broker: "loopback", Size: 128, Mode: Reliable, MsgsPerSec: 1250, Ratio: &ratio, Resends: &resends, Spread: spread},
		{Transport: "kafka", Broker: "kfake (test broker)", Client: "kafka-go", Note: kfakeNote, Size: 128, Mode: Raw, MsgsPerSec: 800, Spread: spread},
		{Transport: "kafka", Broker: "kfake (test broker)", Note: kfakeNote, Size: 128, Mode: Reliable, MsgsPerSec: 1000, Ratio: &ratio, Resends: &resends, Spread: spread},
	}
	return rows
}

func TestTableLabelsTestBroker(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, sampleRows(), About{Date: "2026-11-22", Machine: "2 cores", Workload: "w"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"2026-11-22: 2 cores", "kafka on kfake (test broker); raw: kafka-go", "* note: kfake is a test broker", "kafka*", "1.25"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

// TestHTMLIsSelfContained checks the report's text: it refers to
// nothing outside itself, forbids the browser to fetch anything, and
// labels a test broker in its charts and its text.
func TestHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sampleRows(), About{Date: "2026-11-22", Machine: "2 cores", Workload: "w"}); err != nil {
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

// TestSealedRatio: a sealed row's sealed ratio is its rate over the
// reliable row's of the same transport and size (its ratio stays the one
// over raw), the other rows have none, and the table and the HTML report
// say what sealing kept.
func TestSealedRatio(t *testing.T) {
	rows := []Row{
		{Transport: "tcp", Size: 128, Mode: Raw, MsgsPerSec: 1000},
		{Transport: "tcp", Size: 128, Mode: Reliable, MsgsPerSec: 2000},
		{Transport: "tcp", Size: 128, Mode: Sealed, MsgsPerSec: 1800},
		{Transport: "tcp", Size: 65536, Mode: Raw, MsgsPerSec: 100},
		{Transport: "tcp", Size: 65536, Mode: Reliable, MsgsPerSec: 80},
		{Transport: "tcp", Size: 65536, Mode: Sealed, MsgsPerSec: 60},
		{Transport: "nats", Size: 128, Mode: Sealed, MsgsPerSec: 5}, // no reliable row
	}
	SetRatios(rows)
	want := []float64{-1, -1, 0.9, -1, -1, 0.75, -1}
	for i, r := range rows {
		got := -1.0
		if r.SealedRatio != nil {
			got = *r.SealedRatio
		}
		if got != want[i] {
			t.Errorf("row %d (%s %d %s): sealed ratio %v, want %v", i, r.Transport, r.Size, r.Mode, got, want[i])
		}
	}
	if rows[2].Ratio == nil || *rows[2].Ratio != 1.8 {
		t.Errorf("the sealed row's ratio is %v; want 1.8, over raw", rows[2].Ratio)
	}
	const costs = "tcp 128 B 0.90, tcp 64 KiB 0.75"
	var table, page strings.Builder
	if err := WriteTable(&table, rows, About{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&page, rows, About{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "sealed over reliable (the share of the unsealed protocol's msgs/s that sealing keeps): "+costs) {
		t.Errorf("the table does not say what sealing kept:\n%s", table.String())
	}
	if !strings.Contains(page.String(), `<span id="sealed-costs">`+costs+`</span>`) || !strings.Contains(page.String(), `data-mode="sealed"`) {
		t.Error("the report does not say what sealing kept, or draws no sealed bar")
	}
}
