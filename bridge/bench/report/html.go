package report

import (
	"bytes"
	"html/template"
	"io"
	"os"
	"slices"
)

// The report is one HTML file with everything inline: the charts are SVG,
// the style is in the page, there is no script, and a Content Security
// Policy forbids the browser to fetch anything, so it opens the same from
// a disk, an e-mail or an artefact store, with no network.

// reportPage is what the template shows.
type reportPage struct {
	About       About
	Charts      []reportSize
	Rows        []Row
	Transports  []reportTransport
	SealedCosts string // see sealedCosts
	// Work is the work-pulling scenario's chart; its rows are in Rows.
	Work template.HTML
}

type reportSize struct {
	Size       string
	Throughput template.HTML
	Latency    template.HTML
}

type reportTransport struct {
	Name, Broker, Client, Note string
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"size":      SizeText,
	"thousands": thousands,
	"ms":        msText,
	"opt":       optional,
	"optInt":    optionalInt,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bridge bench, {{.About.Date}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2329; margin: 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
p.about { color: #4a525b; margin: 0 0 12px; }
#charts { display: flex; flex-wrap: wrap; gap: 8px 24px; }
figure { margin: 0; }
svg.chart { font-size: 12px; }
svg .title { font-size: 14px; font-weight: 600; fill: #1d2329; }
svg .grid { stroke: #e3e6ea; }
svg .axis { stroke: #6b737c; }
svg .tick, svg .sub, svg .key { fill: #5b636c; }
svg .value { fill: #1d2329; font-size: 11px; }
svg .label { fill: #1d2329; }
svg .ratio { fill: #1f6fb4; font-weight: 600; }
svg .whisker, svg .tail { stroke-width: 1.5; }
svg .tail { stroke-dasharray: 3 3; }
svg .median { stroke: #111; stroke-width: 2.5; }
svg .max { stroke-width: 1.6; fill: none; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e3e6ea; text-align: right; white-space: nowrap; }
th { background: #f4f6f8; }
td.text, th.text { text-align: left; }
.note { color: #8a4b00; }
</style>
</head>
<body>
<h1>bridge bench</h1>
<p class="about">{{.About.Date}} · {{.About.Machine}}<br>{{.About.Workload}}</p>
<section id="charts">
{{if .Work}}<figure class="work">{{.Work}}</figure>
{{end}}{{range .Charts}}<figure class="throughput">{{.Throughput}}</figure>
<figure class="latency">{{.Latency}}</figure>
{{end}}</section>
{{if .Work}}<h2>Work pulling</h2>
<table id="work">
<tr><th class="text">transport</th><th class="text">mode</th><th>workers</th><th>killed</th><th>msgs/s</th><th>scaling</th><th>p50 ms</th><th>p99 ms</th><th>resends</th><th>dups</th><th>lost</th><th>out of order</th><th class="text">ordering</th><th>ratio</th></tr>
{{range .Rows}}<tr><td class="text">{{.Transport}}</td><td class="text">{{.Mode}}</td><td>{{.Workers}}</td><td>{{.Killed}}</td><td>{{thousands .MsgsPerSec}}</td><td>{{opt .Scaling "%.2fx"}}</td><td>{{ms .P50ms}}</td><td>{{ms .P99ms}}</td><td>{{optInt .Resends}}</td><td>{{.Duplicates}}</td><td>{{.Lost}}</td><td>{{.OutOfOrder}}</td><td class="text">{{.Ordering}}</td><td>{{opt .Ratio "%.2f"}}</td></tr>
{{end}}</table>
<ul id="mechanisms">
{{range .Transports}}<li><b>{{.Name}}</b> on {{.Broker}}: {{.Client}}.{{if .Note}} <span class="note">Note: {{.Note}}.</span>{{end}}</li>
{{end}}</ul>
<p>Scaling: messages per second over the same mechanism's with one worker. Ratio: work pulling's over the broker's competing consumers' with as many workers (tcp's over amqp's). Killed 1: a short pass in which worker 0 is killed once a quarter of the messages are in; its duplicates and lost are the kill's.</p>
{{else}}<h2>Carriers</h2>
<ul id="carriers">
{{range .Transports}}<li><b>{{.Name}}</b> on {{.Broker}}. Raw: {{.Client}}.{{if .Note}} <span class="note">Note: {{.Note}}.</span>{{end}}</li>
{{end}}</ul>
<p>Reliable: the protocol over the service's carrier, as <code>bridge run</code> runs it; durable: with the durable producer queue; sealed: with every frame sealed, as <code>BRIDGE_SECRET</code> seals them.
Ratio: messages per second over the raw client's, same transport and size.{{if .SealedCosts}}
Sealed over reliable, the share of the unsealed protocol's rate that sealing keeps: <span id="sealed-costs">{{.SealedCosts}}</span>.{{end}}
Latency runs from making a message to its receipt by the consuming application; at full speed it is mostly time spent queueing.
CPU is this process's (an embedded NATS server's included, a broker in another process's not); heap is the Go heap's peak.</p>
<h2>Figures</h2>
<table id="figures">
<tr><th class="text">transport</th><th>size</th><th class="text">mode</th><th>msgs/s</th><th>MB/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>CPU s</th><th>CPU ns/msg</th><th>heap MB</th><th>resends</th><th>dups</th><th>lost</th><th>ratio</th></tr>
{{range .Rows}}<tr><td class="text">{{.Transport}}</td><td>{{size .Size}}</td><td class="text">{{.Mode}}</td><td>{{thousands .MsgsPerSec}}</td><td>{{printf "%.1f" .MBPerSec}}</td><td>{{ms .P50ms}}</td><td>{{ms .P90ms}}</td><td>{{ms .P99ms}}</td><td>{{ms .MaxMs}}</td><td>{{opt .CPUSeconds "%.2f"}}</td><td>{{opt .CPUNsPerMsg "%.0f"}}</td><td>{{printf "%.1f" .PeakHeapMB}}</td><td>{{optInt .Resends}}</td><td>{{.Duplicates}}</td><td>{{.Lost}}</td><td>{{opt .Ratio "%.2f"}}</td></tr>
{{end}}</table>
{{end}}</body>
</html>
`))

// WriteHTML writes the HTML report of rows: one page with everything
// inline (see the comment above reportPage).
func WriteHTML(w io.Writer, rows []Row, about About) error {
	page := reportPage{About: about, Rows: rows, SealedCosts: sealedCosts(rows)}
	if workRows(rows) {
		page.Work = template.HTML(workChart(rows)) // built from escaped text only
		for _, r := range rows {
			name := r.Transport + " " + r.Mode
			if !slices.ContainsFunc(page.Transports, func(t reportTransport) bool { return t.Name == name }) {
				page.Transports = append(page.Transports, reportTransport{Name: name, Broker: r.Broker, Client: r.Client, Note: r.Note})
			}
		}
		return reportTemplate.Execute(w, page)
	}
	var sizes []int
	for _, r := range rows {
		if !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	for _, s := range sizes {
		page.Charts = append(page.Charts, reportSize{
			Size:       SizeText(s),
			Throughput: template.HTML(throughputChart(rows, s)), // built from escaped text only
			Latency:    template.HTML(latencyChart(rows, s)),
		})
	}
	for _, r := range rows {
		if r.Mode == Raw && !slices.ContainsFunc(page.Transports, func(t reportTransport) bool { return t.Name == r.Transport }) {
			page.Transports = append(page.Transports, reportTransport{Name: r.Transport, Broker: r.Broker, Client: r.Client, Note: r.Note})
		}
	}
	return reportTemplate.Execute(w, page)
}

// WriteHTMLFile writes the HTML report to path, whole or not at all.
func WriteHTMLFile(path string, rows []Row, about About) error {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rows, about); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
