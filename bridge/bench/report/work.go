package report

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// The work-pulling scenario's rows: each has Workers above 0.

// setWorkRatios sets each work-pulling row's ratio to the competing
// consumers' of its transport and workers (tcp, which has no broker, to
// amqp's), and every row's scaling to its mechanism's with one worker. A
// kill pass has neither.
func setWorkRatios(rows []Row) {
	find := func(transport, mode string, workers int) *Row {
		i := slices.IndexFunc(rows, func(o Row) bool {
			return o.Workers == workers && o.Killed == 0 && o.Transport == transport && o.Mode == mode
		})
		if i < 0 || rows[i].MsgsPerSec <= 0 {
			return nil
		}
		return &rows[i]
	}
	for i := range rows {
		r := &rows[i]
		if r.Workers == 0 || r.Killed > 0 {
			continue
		}
		if one := find(r.Transport, r.Mode, 1); one != nil {
			s := Round(r.MsgsPerSec/one.MsgsPerSec, 2)
			r.Scaling = &s
		}
		if r.Mode != WorkPulling {
			continue
		}
		base := find(r.Transport, Competing, r.Workers)
		if base == nil && r.Transport == "tcp" {
			base = find("amqp", Competing, r.Workers)
		}
		if base != nil {
			ratio := Round(r.MsgsPerSec/base.MsgsPerSec, 3)
			r.Ratio = &ratio
		}
	}
}

// workRows reports whether rows are the work-pulling scenario's.
func workRows(rows []Row) bool {
	return slices.ContainsFunc(rows, func(r Row) bool { return r.Workers > 0 })
}

// writeWorkTable is WriteTable for the work-pulling scenario: the passes,
// then the kill passes, then what each mechanism was.
func writeWorkTable(w io.Writer, rows []Row, about About) error {
	fmt.Fprintf(w, "bridge bench, work pulling, %s: %s\n", about.Date, about.Machine)
	fmt.Fprintf(w, "%s\n\n", about.Workload)
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "transport\tmode\tworkers\tkilled\tmsgs/s\tscaling\tp50 ms\tp99 ms\tresends\tdups\tlost\tout of order\tordering\tratio\t\n")
	for _, killed := range []bool{false, true} {
		for _, r := range rows {
			if r.Workers == 0 || (r.Killed > 0) != killed {
				continue
			}
			transport := r.Transport
			if r.Note != "" {
				transport += "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n",
				transport, r.Mode, r.Workers, r.Killed, thousands(r.MsgsPerSec), optional(r.Scaling, "%.2fx"),
				msText(r.P50ms), msText(r.P99ms), optionalInt(r.Resends), r.Duplicates, r.Lost, r.OutOfOrder, r.Ordering, optional(r.Ratio, "%.2f"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	type seenKey struct{ transport, mode string }
	var seen []seenKey
	for _, r := range rows {
		k := seenKey{r.Transport, r.Mode}
		if r.Workers == 0 || slices.Contains(seen, k) {
			continue
		}
		seen = append(seen, k)
		fmt.Fprintf(w, "%s %s on %s: %s\n", r.Transport, r.Mode, r.Broker, r.Client)
		if r.Note != "" {
			fmt.Fprintf(w, "  * note: %s\n", r.Note)
		}
	}
	_, err := fmt.Fprintln(w, "scaling: msgs/s over the same mechanism's with one worker. ratio: work pulling's msgs/s over the broker's competing consumers' with as many workers (tcp: over amqp's). killed 1: a short pass in which worker 0 is killed once a quarter of the messages are in; its dups and lost are the kill's. Latency: from making a message to the end of its sink's work.")
	return err
}

// workChart draws the work-pulling scenario's messages per second: a group
// of bars per transport, within it a bar per mechanism and count of
// workers (kill passes left out), the count under each bar.
func workChart(rows []Row) string {
	var passes []Row
	for _, r := range rows {
		if r.Workers > 0 && r.Killed == 0 {
			passes = append(passes, r)
		}
	}
	transports := transportsOf(passes)
	var counts []int
	for _, r := range passes {
		if !slices.Contains(counts, r.Workers) {
			counts = append(counts, r.Workers)
		}
	}
	slices.Sort(counts)
	modes := []string{Competing, WorkPulling}
	const (
		left, right, top, bottom = 72.0, 16.0, 56.0, 60.0
		barWidth, barGap, group  = 22.0, 3.0, 30.0
	)
	bars := float64(len(modes) * len(counts))
	groupWidth := bars*(barWidth+barGap) - barGap + group
	width := max(left+right+groupWidth*float64(len(transports)), 380)
	height := 336.0
	plot := height - top - bottom
	var top1 float64
	for _, r := range passes {
		top1 = max(top1, r.MsgsPerSec)
	}
	ticks := niceTicks(top1)
	yMax := ticks[len(ticks)-1]
	y := func(v float64) float64 { return top + plot - v/yMax*plot }
	var b []byte
	b = fmt.Appendf(b, `<svg class="chart work" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="work pulling throughput">`, width, height, width, height)
	b = fmt.Appendf(b, `<text class="title" x="8" y="22">Work pulling, %s messages, %s ms of work each: msgs/s by workers</text>`, svgText(SizeText(passes[0].Size)), svgText(fmt.Sprint(passes[0].SinkCostMs)))
	for _, t := range ticks {
		b = fmt.Appendf(b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, left, width-right, y(t), y(t))
		b = fmt.Appendf(b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, y(t)+4, compact(t))
	}
	for i, tr := range transports {
		x0 := left + group/2 + float64(i)*groupWidth
		j := 0
		for _, m := range modes {
			for _, n := range counts {
				x := x0 + float64(j)*(barWidth+barGap)
				j++
				k := slices.IndexFunc(passes, func(r Row) bool { return r.Transport == tr && r.Mode == m && r.Workers == n })
				if k < 0 {
					continue
				}
				r := passes[k]
				h := max(r.MsgsPerSec/yMax*plot, 1)
				b = fmt.Appendf(b, `<rect class="bar %s" data-transport="%s" data-mode="%s" data-workers="%d" x="%.1f" y="%.1f" width="%.0f" height="%.1f" fill="%s"><title>%s %s, %d workers: %s msgs/s</title></rect>`,
					m, svgText(tr), m, n, x, top+plot-h, barWidth, h, modeColors[m], svgText(tr), m, n, thousands(r.MsgsPerSec))
				b = fmt.Appendf(b, `<text class="value" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x+barWidth/2, top+plot-h-4, compact(r.MsgsPerSec))
				b = fmt.Appendf(b, `<text class="sub" x="%.1f" y="%.1f" text-anchor="middle">%d</text>`, x+barWidth/2, top+plot+14, n)
			}
		}
		mid := x0 + (groupWidth-group)/2
		b = fmt.Appendf(b, `<text class="label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, top+plot+32, svgText(tr))
	}
	b = fmt.Appendf(b, `<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, left, width-right, top+plot, top+plot)
	var present []string
	for _, m := range modes {
		if slices.ContainsFunc(passes, func(r Row) bool { return r.Mode == m }) {
			present = append(present, m)
		}
	}
	b = append(b, legend(present, 8, 42)...)
	b = append(b, `</svg>`...)
	return string(b)
}
