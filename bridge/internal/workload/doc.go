// Package workload is what the demo and the bench share: the numbered,
// timestamped messages they send, the tally of what arrived (missing,
// repeated, how long each took) and its percentiles, and how progress is
// shown on a terminal.
package workload
