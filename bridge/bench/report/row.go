package report

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

// The modes of a run, as Row.Mode names them.
const (
	Raw      = "raw"      // the carrier's own client, no protocol
	Reliable = "reliable" // the protocol over the carrier
	Durable  = "durable"  // the protocol with the durable producer queue
	Sealed   = "sealed"   // the protocol with sealed frames (BRIDGE_SECRET)
	Headers  = "headers"  // the protocol, each message with three headers of 32 bytes
	Traced   = "traced"   // the protocol traced with OpenTelemetry, a share of messages sampled

	// The work-pulling scenario's: the protocol's work pulling, and the
	// broker's own competing consumers on the same broker.
	WorkPulling = "work-pulling"
	Competing   = "competing"
)

// The orderings a work-sharing mechanism gives, as Row.Ordering says them.
const (
	PerWorker = "per worker" // what one worker gets comes in the order sent
	PerKey    = "per key"    // in order within a key (a Kafka partition)
	NoOrder   = "none"
)

// About says when a bench ran, on what machine, with what workload:
// figures mean little without it.
type About struct {
	Date     string
	Machine  string
	Workload string
}

// Row is what one run measured: a transport, a size and a mode. It is an
// element of the JSON output. Fields that do not apply to a mode are
// null rather than absent, so every row has the same keys: raw rows have no
// ratio and no resends (there is no protocol to resend).
type Row struct {
	Transport string  `json:"transport"` // as BRIDGE_BENCH_TRANSPORTS names it
	Broker    string  `json:"broker"`    // what served it; a test broker says so
	Mode      string  `json:"mode"`      // raw, reliable, durable, sealed, headers or traced
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
	CPUSeconds *float64 `json:"cpu_seconds"` // this process's CPU time (an embedded NATS server's included, another process's broker's not); null where unknown
	// CPUNsPerMsg is CPUSeconds over Messages, in nanoseconds: what a
	// message costs both ends together, the figure that a busy machine
	// disturbs least. Null where the CPU time is unknown.
	CPUNsPerMsg *float64 `json:"cpu_ns_per_msg"`
	PeakHeapMB  float64  `json:"peak_heap_mb"` // the Go heap's peak during the run, MB (10^6 bytes)
	Resends     *uint64  `json:"resends"`      // messages the producer sent again; null for raw
	Duplicates  uint64   `json:"duplicates"`   // reliable: repeats the protocol dropped; raw: repeats the receiver got
	Ratio       *float64 `json:"ratio"`        // msgs_per_sec of this row over the raw row's, same transport and size; null for raw
	// SealedRatio is a sealed row's msgs_per_sec over the reliable row's
	// (unsealed), same transport and size: what sealing costs. Null for
	// the other modes.
	SealedRatio *float64 `json:"sealed_ratio"`
	Note        string   `json:"note"` // a caveat about the broker, "" for none

	// The work-pulling scenario's (BRIDGE_BENCH_SCENARIO=work-pulling);
	// zero in the point-to-point rows. Ratio is then the row's msgs/s over
	// the broker's competing consumers' (tcp's: over RabbitMQ's), same
	// workers.
	Workers    int      `json:"workers"`      // workers sharing the messages
	SinkCostMs float64  `json:"sink_cost_ms"` // what each message costs a worker
	Scaling    *float64 `json:"scaling"`      // msgs/s over the same mechanism's with one worker; null where none ran
	Ordering   string   `json:"ordering"`     // what the mechanism guarantees: per worker, per key or none
	OutOfOrder int      `json:"out_of_order"` // messages that came to their worker (Kafka: partition) after a later one
	Killed     int      `json:"killed"`       // workers killed mid-run in this pass: its duplicates and lost are the kill's

	// Spread is the latency at SpreadQuantiles, in ms, for the HTML
	// report's chart.
	Spread []float64 `json:"-"`
}

// SpreadQuantiles are the latency quantiles the HTML report draws: the
// fastest message, p25, p50, p75, p90, p99 and the slowest.
var SpreadQuantiles = []float64{0, 0.25, 0.50, 0.75, 0.90, 0.99, 1}

// SetRatios sets each protocol row's ratio to its raw row's rate, and each
// sealed row's sealed ratio to its reliable row's.
func SetRatios(rows []Row) {
	setWorkRatios(rows)
	for i := range rows {
		if rows[i].Mode == Raw || rows[i].Workers > 0 {
			continue
		}
		rows[i].Ratio = ratioTo(rows, rows[i], Raw)
		if rows[i].Mode == Sealed {
			rows[i].SealedRatio = ratioTo(rows, rows[i], Reliable)
		}
	}
}

// ratioTo is r's rate over that of the row of mode with r's transport and
// size, or nil if there is none.
func ratioTo(rows []Row, r Row, mode string) *float64 {
	j := slices.IndexFunc(rows, func(o Row) bool {
		return o.Mode == mode && o.Transport == r.Transport && o.Size == r.Size
	})
	if j < 0 || rows[j].MsgsPerSec <= 0 {
		return nil
	}
	ratio := Round(r.MsgsPerSec/rows[j].MsgsPerSec, 3)
	return &ratio
}

// sealedCosts says, for each sealed row, what share of the unsealed
// protocol's rate it kept: "tcp 128 B 0.93, tcp 64 KiB 0.85"; "" for none.
func sealedCosts(rows []Row) string {
	var parts []string
	for _, r := range rows {
		if r.Mode == Sealed && r.SealedRatio != nil {
			parts = append(parts, fmt.Sprintf("%s %s %.2f", r.Transport, SizeText(r.Size), *r.SealedRatio))
		}
	}
	return strings.Join(parts, ", ")
}

// Round rounds x to digits decimals: figures are written to what is worth
// reading.
func Round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// Millis is d in milliseconds, rounded to microseconds.
func Millis(d time.Duration) float64 { return Round(float64(d)/float64(time.Millisecond), 3) }

// WriteJSON writes the rows as a JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// WriteTable writes the rows as a table, then what each raw client was and
// the brokers' caveats.
func WriteTable(w io.Writer, rows []Row, about About) error {
	if workRows(rows) {
		return writeWorkTable(w, rows, about)
	}
	fmt.Fprintf(w, "bridge bench, %s: %s\n", about.Date, about.Machine)
	fmt.Fprintf(w, "%s\n\n", about.Workload)
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "transport\tsize\tmode\tmsgs/s\tMB/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tCPU s\tCPU ns/msg\theap MB\tresends\tdups\tlost\tratio\t\n")
	for _, r := range rows {
		transport := r.Transport
		if r.Note != "" {
			transport += "*" // see the note below the table
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%d\t%d\t%s\t\n",
			transport, SizeText(r.Size), r.Mode, thousands(r.MsgsPerSec), r.MBPerSec,
			msText(r.P50ms), msText(r.P90ms), msText(r.P99ms), msText(r.MaxMs),
			optional(r.CPUSeconds, "%.2f"), optional(r.CPUNsPerMsg, "%.0f"), r.PeakHeapMB, optionalInt(r.Resends), r.Duplicates, r.Lost, optional(r.Ratio, "%.2f"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var seen []string
	for _, r := range rows {
		if slices.Contains(seen, r.Transport) || r.Mode != Raw {
			continue
		}
		seen = append(seen, r.Transport)
		fmt.Fprintf(w, "%s on %s; raw: %s\n", r.Transport, r.Broker, r.Client)
		if r.Note != "" {
			fmt.Fprintf(w, "  * note: %s\n", r.Note)
		}
	}
	if costs := sealedCosts(rows); costs != "" {
		fmt.Fprintf(w, "sealed over reliable (the share of the unsealed protocol's msgs/s that sealing keeps): %s\n", costs)
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

// SizeText is a message size as people say it: 128 B, 64 KiB.
func SizeText(n int) string {
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
