package report

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// The report's charts are inline SVG drawn here: the report needs nothing
// from the network and no script, and opens the same in any browser.

// modeColors are the modes' colours in every chart.
var modeColors = map[string]string{Raw: "#8a8f98", Reliable: "#1f6fb4", Sealed: "#2a9d5c", Durable: "#e07b18", Headers: "#8e5cc4", Traced: "#c4475c",
	Competing: "#8a8f98", WorkPulling: "#1f6fb4"}

var modeOrder = []string{Raw, Reliable, Sealed, Durable, Headers, Traced}

// svgText escapes s for SVG text and attributes.
func svgText(s string) string { return html.EscapeString(s) }

// transportsOf lists the transports of rows, in their order.
func transportsOf(rows []Row) []string {
	var ts []string
	for _, r := range rows {
		if !slices.Contains(ts, r.Transport) {
			ts = append(ts, r.Transport)
		}
	}
	return ts
}

// modesOf lists the modes of rows, in modeOrder.
func modesOf(rows []Row) []string {
	var ms []string
	for _, m := range modeOrder {
		if slices.ContainsFunc(rows, func(r Row) bool { return r.Mode == m }) {
			ms = append(ms, m)
		}
	}
	return ms
}

func rowsOfSize(rows []Row, size int) []Row {
	var out []Row
	for _, r := range rows {
		if r.Size == size {
			out = append(out, r)
		}
	}
	return out
}

// transportLabel names a transport in a chart, saying so when its broker
// is a test broker.
func transportLabel(rows []Row, transport string) (name, sub string) {
	for _, r := range rows {
		if r.Transport == transport && r.Note != "" && strings.Contains(r.Broker, "test broker") {
			return transport, "(test broker)"
		}
	}
	return transport, ""
}

// throughputChart draws messages per second for one size: a group of bars
// per transport, a bar per mode, the ratio to raw under each group.
func throughputChart(rows []Row, size int) string {
	rows = rowsOfSize(rows, size)
	transports, modes := transportsOf(rows), modesOf(rows)
	const (
		left, right, top, bottom = 72.0, 16.0, 56.0, 64.0
		barWidth, barGap, group  = 26.0, 4.0, 28.0
	)
	groupWidth := float64(len(modes))*(barWidth+barGap) - barGap + group
	width := left + right + groupWidth*float64(len(transports))
	width = max(width, 380)
	height := 336.0
	plot := height - top - bottom
	var top1 float64
	for _, r := range rows {
		top1 = max(top1, r.MsgsPerSec)
	}
	ticks := niceTicks(top1)
	yMax := ticks[len(ticks)-1]
	y := func(v float64) float64 { return top + plot - v/yMax*plot }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart throughput" data-size="%d" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="throughput, %s messages">`,
		size, width, height, width, height, svgText(SizeText(size)))
	fmt.Fprintf(&b, `<text class="title" x="%.0f" y="22">Throughput, %s messages, msgs/s</text>`, 8.0, svgText(SizeText(size)))
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, left, width-right, y(t), y(t))
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, y(t)+4, compact(t))
	}
	for i, tr := range transports {
		x0 := left + group/2 + float64(i)*groupWidth
		var raw float64
		for j, m := range modes {
			k := slices.IndexFunc(rows, func(r Row) bool { return r.Transport == tr && r.Mode == m })
			if k < 0 {
				continue
			}
			r := rows[k]
			if m == Raw {
				raw = r.MsgsPerSec
			}
			x := x0 + float64(j)*(barWidth+barGap)
			h := max(r.MsgsPerSec/yMax*plot, 1)
			fmt.Fprintf(&b, `<rect class="bar %s" data-transport="%s" data-mode="%s" x="%.1f" y="%.1f" width="%.0f" height="%.1f" fill="%s"><title>%s %s, %s: %s msgs/s, %.1f MB/s</title></rect>`,
				m, svgText(tr), m, x, top+plot-h, barWidth, h, modeColors[m], svgText(tr), m, svgText(SizeText(size)), thousands(r.MsgsPerSec), r.MBPerSec)
			fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x+barWidth/2, top+plot-h-4, compact(r.MsgsPerSec))
		}
		mid := x0 + (groupWidth-group)/2
		name, sub := transportLabel(rows, tr)
		fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, top+plot+18, svgText(name))
		line := top + plot + 33
		if sub != "" {
			fmt.Fprintf(&b, `<text class="sub" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, line, svgText(sub))
			line += 14
		}
		var ratios []string
		for _, r := range rows {
			if r.Transport == tr && r.Ratio != nil && raw > 0 {
				ratios = append(ratios, fmt.Sprintf("×%.2f", *r.Ratio))
			}
		}
		if len(ratios) > 0 {
			fmt.Fprintf(&b, `<text class="ratio" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, line, strings.Join(ratios, " "))
		}
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, left, width-right, top+plot, top+plot)
	b.WriteString(legend(modes, 8, 42))
	b.WriteString(`</svg>`)
	return b.String()
}

// latencyChart draws the spread of latencies for one size, a row per
// transport and mode on a logarithmic scale: a line from the fastest
// message to p99, a box from p25 to p75, a mark at p50, a dot at p99 and a
// cross at the slowest.
func latencyChart(rows []Row, size int) string {
	rows = rowsOfSize(rows, size)
	const left, right, top, rowHeight = 150.0, 24.0, 56.0, 24.0
	width := 760.0
	height := top + rowHeight*float64(len(rows)) + 44
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		if len(r.Spread) > 0 {
			lo, hi = min(lo, r.Spread[0]), max(hi, r.Spread[len(r.Spread)-1])
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0.01, 1
	}
	const floor = 0.001 // ms: nothing arrives faster than a microsecond
	d0 := math.Floor(math.Log10(max(lo, floor)))
	d1 := max(math.Ceil(math.Log10(max(hi, floor))), d0+1)
	plot := width - left - right
	x := func(ms float64) float64 {
		return left + (math.Log10(max(ms, floor))-d0)/(d1-d0)*plot
	}
	bottom := top + rowHeight*float64(len(rows))

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart latency" data-size="%d" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="latency, %s messages">`,
		size, width, height, width, height, svgText(SizeText(size)))
	fmt.Fprintf(&b, `<text class="title" x="%.0f" y="22">Latency, %s messages, ms (logarithmic)</text>`, 8.0, svgText(SizeText(size)))
	for d := d0; d <= d1; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, x(v), x(v), top-6, bottom)
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(v), bottom+16, strings.TrimSuffix(fmt.Sprintf("%g", v), ".0"))
	}
	for i, r := range rows {
		cy := top + rowHeight*float64(i) + rowHeight/2
		name, sub := transportLabel(rows, r.Transport)
		label := name + " " + r.Mode
		if sub != "" {
			label = name + "* " + r.Mode
		}
		fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-8, cy+4, svgText(label))
		if len(r.Spread) != len(SpreadQuantiles) {
			continue
		}
		s := r.Spread // min, p25, p50, p75, p90, p99, max
		color := modeColors[r.Mode]
		fmt.Fprintf(&b, `<g class="spread %s" data-transport="%s" data-mode="%s"><title>%s %s: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms</title>`,
			r.Mode, svgText(r.Transport), r.Mode, svgText(r.Transport), r.Mode, msText(r.P50ms), msText(r.P90ms), msText(r.P99ms), msText(r.MaxMs))
		fmt.Fprintf(&b, `<line class="whisker" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, x(s[0]), x(s[5]), cy, cy, color)
		fmt.Fprintf(&b, `<line class="tail" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, x(s[5]), x(s[6]), cy, cy, color)
		fmt.Fprintf(&b, `<rect class="box" x="%.1f" y="%.1f" width="%.1f" height="12" fill="%s"/>`, x(s[1]), cy-6, max(x(s[3])-x(s[1]), 2), color)
		fmt.Fprintf(&b, `<line class="median" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, x(s[2]), x(s[2]), cy-8, cy+8)
		fmt.Fprintf(&b, `<circle class="p99" cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`, x(s[5]), cy, color)
		fmt.Fprintf(&b, `<path class="max" d="M%.1f %.1fl6 6m0 -6l-6 6" stroke="%s"/>`, x(s[6])-3, cy-3, color)
		b.WriteString(`</g>`)
	}
	key := "line: fastest to p99 · box: p25 to p75 · bar: p50 · dot: p99 · cross: slowest"
	if slices.ContainsFunc(rows, func(r Row) bool { _, sub := transportLabel(rows, r.Transport); return sub != "" }) {
		key += " · *: a test broker"
	}
	fmt.Fprintf(&b, `<text class="key" x="%.1f" y="%.1f">%s</text>`, left, bottom+34, key)
	b.WriteString(legend(modesOf(rows), 8, 42))
	b.WriteString(`</svg>`)
	return b.String()
}

// legend draws the modes' colours in a line from x.
func legend(modes []string, x, y float64) string {
	var b strings.Builder
	for _, m := range modes {
		fmt.Fprintf(&b, `<rect class="swatch %s" x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text class="key" x="%.1f" y="%.1f">%s</text>`,
			m, x, y-10, modeColors[m], x+16, y, m)
		x += float64(len(m))*7 + 36
	}
	return b.String()
}

// niceTicks returns 0 and round steps up to at least top.
func niceTicks(top float64) []float64 {
	if top <= 0 {
		return []float64{0, 1}
	}
	raw := top / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := 0.0; ; v += step {
		ticks = append(ticks, v)
		if v >= top {
			return ticks
		}
	}
}

// compact writes a rate briefly: 950, 12.5k, 1.23M.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v/1e6), "0"), ".") + "M"
	case v >= 1e3:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v/1e3), "0"), ".") + "k"
	}
	return fmt.Sprintf("%.0f", v)
}
