// Package report is how `bridge bench` shows what it measured: a Row per
// transport, message size and mode, written as a table, as JSON, or as a
// self-contained HTML page with SVG charts of throughput and latency. It
// measures nothing; package bench does, and hands it the rows.
package report
