package workload

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// Message builds message i: "<number> <unix nanoseconds> " padded with 'x'
// to size bytes (longer, if size cannot hold the number and the time), so
// that a reader can tell what is missing, what came twice and how long it
// took.
func Message(i, size int, at time.Time) []byte {
	b := make([]byte, 0, max(size, 32))
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, at.UnixNano(), 10)
	b = append(b, ' ')
	for len(b) < size { // a copy per padding's length, not a byte at a time
		b = append(b, padding[:min(len(padding), size-len(b))]...)
	}
	return b
}

// padding fills messages up to their size.
var padding = bytes.Repeat([]byte{'x'}, 64<<10)

// Parse reads the number and time of a Message. It reads the digits
// itself: the bench parses every message it receives, and strconv's
// general parsing was a tenth of a tcp run's CPU.
func Parse(b []byte) (i int, at time.Time, ok bool) {
	num, rest, ok := bytes.Cut(b, []byte{' '})
	if !ok {
		return 0, time.Time{}, false
	}
	ts, _, _ := bytes.Cut(rest, []byte{' '})
	n, ok1 := decimal(num)
	ns, ok2 := decimal(ts)
	if !ok1 || !ok2 {
		return 0, time.Time{}, false
	}
	return int(n), time.Unix(0, ns), true
}

// decimal reads b as a non-negative decimal that fits an int64.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		d := int64(c) - '0'
		if d < 0 || d > 9 || n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
