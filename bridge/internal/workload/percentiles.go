package workload

import (
	"fmt"
	"slices"
	"time"
)

// Percentiles returns p50, p90, p99 and the maximum of ds, or nil for none.
// It sorts ds in place.
func Percentiles(ds []time.Duration) []time.Duration {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	return []time.Duration{Quantile(ds, 0.50), Quantile(ds, 0.90), Quantile(ds, 0.99), ds[len(ds)-1]}
}

// Quantile is the q-quantile (0 to 1) of sorted ds, which must not be
// empty.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// Millis writes d in milliseconds, as "1.25 ms".
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
