package workload

import (
	"bytes"
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

// Parse reads the number and time of a Message.
func Parse(b []byte) (i int, at time.Time, ok bool) {
	num, rest, ok := bytes.Cut(b, []byte{' '})
	if !ok {
		return 0, time.Time{}, false
	}
	ts, _, _ := bytes.Cut(rest, []byte{' '})
	i, err1 := strconv.Atoi(string(num))
	ns, err2 := strconv.ParseInt(string(ts), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, time.Time{}, false
	}
	return i, time.Unix(0, ns), true
}
