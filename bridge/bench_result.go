package bridge

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// benchRow is what one run measured: a transport, a size and a mode. It is
// an element of the JSON output. Fields that do not apply to a mode are
// null rather than absent, so every row has the same keys: raw rows have no
// ratio and no resends (there is no protocol to resend).
type benchRow struct {
	Transport string  `json:"transport"` // as BRIDGE_BENCH_TRANSPORTS names it
	Broker    string  `json:"broker"`    // what served it; a test broker says so
	Mode      string  `json:"mode"`      // raw, reliable or durable
	Client    string  `json:"client"`    // what sent and received
	Size      int     `json:"size"`      // bytes per message
	Window    int     `json:"window"`    // the consumer's window (raw amqp: its prefetch)
	Rate      float64 `json:"rate"`      // messages per second asked for; 0: as fast as possible
	Rounds    int     `json:"rounds"`

	Messages   int      `json:"messages"` // distinct messages that arrived
	Lost       int      `json:"lost"`     // sent and never arrived (only raw core NATS may lose any)
	Seconds    float64  `json:"seconds"`  // first send to last receipt, rounds added up
	MsgsPerSec float64  `json:"msgs_per_sec"`
	MBPerSec   float64  `json:"mb_per_sec"` // 10^6 bytes of payload a second
	P50ms      float64  `json:"p50_ms"`     // latency: from making a message to its receipt by the consuming application
	P90ms      float64  `json:"p90_ms"`
	P99ms      float64  `json:"p99_ms"`
	MaxMs      float64  `json:"max_ms"`
	CPUSeconds *float64 `json:"cpu_seconds"`  // this process's CPU time (an embedded NATS server's included, another process's broker's not); null where unknown
	PeakHeapMB float64  `json:"peak_heap_mb"` // the Go heap's peak during the run, MB (10^6 bytes)
	Resends    *uint64  `json:"resends"`      // messages the producer sent again; null for raw
	Duplicates uint64   `json:"duplicates"`   // reliable: repeats the protocol dropped; raw: repeats the receiver got
	Ratio      *float64 `json:"ratio"`        // msgs_per_sec of this row over the raw row's, same transport and size; null for raw
	Note       string   `json:"note"`         // a caveat about the broker, "" for none

	// spread is the latency at the quantiles in spreadQuantiles, in ms,
	// for the report's chart.
	spread []float64
}

// spreadQuantiles are the latency quantiles the report draws: the fastest
// message, p25, p50, p75, p90, p99 and the slowest.
var spreadQuantiles = []float64{0, 0.25, 0.50, 0.75, 0.90, 0.99, 1}

// row turns what m measured into a row. Figures are rounded to what is
// worth reading.
func (m *modeRun) row(t *benchTarget, w benchWorkload) benchRow {
	r := benchRow{
		Transport:  t.name,
		Broker:     t.broker,
		Mode:       m.mode,
		Client:     t.client,
		Size:       w.size,
		Window:     w.window,
		Rate:       w.rate,
		Rounds:     w.rounds,
		Messages:   int(m.tally.distinct.Load() - m.warmed),
		Seconds:    round(m.measured.seconds, 6),
		PeakHeapMB: round(float64(m.measured.peakHeap)/1e6, 1),
		Duplicates: uint64(m.tally.duplicates.Load()),
		Note:       t.note,
	}
	if m.mode != modeRaw {
		r.Client = "the protocol over the " + t.name + " carrier, as the service runs it"
		if m.mode == modeDurable {
			r.Client += ", with the durable producer queue"
		}
		resends, dropped := m.pipe.stats()
		r.Resends, r.Duplicates = &resends, dropped
	}
	r.Lost = w.count - r.Messages
	rate := float64(r.Messages) / max(m.measured.seconds, 1e-9)
	r.MsgsPerSec = round(rate, 1)
	r.MBPerSec = round(rate*float64(w.size)/1e6, 2)
	if m.measured.cpuKnown {
		cpu := round(m.measured.cpu.Seconds(), 3)
		r.CPUSeconds = &cpu
	}
	lat := m.latencies()
	if p := percentiles(lat); p != nil { // sorts lat
		r.P50ms, r.P90ms, r.P99ms, r.MaxMs = millis(p[0]), millis(p[1]), millis(p[2]), millis(p[3])
		for _, q := range spreadQuantiles {
			r.spread = append(r.spread, millis(lat[min(len(lat)-1, int(q*float64(len(lat))))]))
		}
	}
	return r
}

// setRatios sets each reliable row's ratio to its raw row's rate.
func setRatios(rows []benchRow) {
	for i := range rows {
		if rows[i].Mode == modeRaw {
			continue
		}
		j := slices.IndexFunc(rows, func(raw benchRow) bool {
			return raw.Mode == modeRaw && raw.Transport == rows[i].Transport && raw.Size == rows[i].Size
		})
		if j >= 0 && rows[j].MsgsPerSec > 0 {
			ratio := round(rows[i].MsgsPerSec/rows[j].MsgsPerSec, 3)
			rows[i].Ratio = &ratio
		}
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func millis(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

// writeBenchJSON writes the rows as a JSON array.
func writeBenchJSON(w io.Writer, rows []benchRow) error {
	if rows == nil {
		rows = []benchRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// writeTable writes the rows as a table, then what each raw client was and
// the brokers' caveats.
func writeTable(w io.Writer, rows []benchRow, about benchAbout) error {
	fmt.Fprintf(w, "bridge bench, %s: %s\n", about.Date, about.Machine)
	fmt.Fprintf(w, "%s\n\n", about.Workload)
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "transport\tsize\tmode\tmsgs/s\tMB/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tCPU s\theap MB\tresends\tdups\tlost\tratio\t\n")
	for _, r := range rows {
		transport := r.Transport
		if r.Note != "" {
			transport += "*" // see the note below the table
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%d\t%d\t%s\t\n",
			transport, sizeText(r.Size), r.Mode, thousands(r.MsgsPerSec), r.MBPerSec,
			msText(r.P50ms), msText(r.P90ms), msText(r.P99ms), msText(r.MaxMs),
			optional(r.CPUSeconds, "%.2f"), r.PeakHeapMB, optionalInt(r.Resends), r.Duplicates, r.Lost, optional(r.Ratio, "%.2f"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var seen []string
	for _, r := range rows {
		if slices.Contains(seen, r.Transport) || r.Mode != modeRaw {
			continue
		}
		seen = append(seen, r.Transport)
		fmt.Fprintf(w, "%s on %s; raw: %s\n", r.Transport, r.Broker, r.Client)
		if r.Note != "" {
			fmt.Fprintf(w, "  * note: %s\n", r.Note)
		}
	}
	_, err := fmt.Fprintln(w, "ratio: msgs/s over the raw client's, same transport and size. Latency: from making a message to its receipt; at full speed it is mostly queueing (set BRIDGE_BENCH_RATE to measure it at a fixed rate).")
	return err
}

func optional(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func optionalInt(v *uint64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}

func msText(ms float64) string {
	if ms >= 100 {
		return fmt.Sprintf("%.0f", ms)
	}
	return fmt.Sprintf("%.2f", ms)
}

// sizeText is a message size as people say it: 128 B, 64 KiB.
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// thousands writes a rate as a whole number with thousands separated.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
