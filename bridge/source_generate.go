package bridge

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// generateSource sends numbered messages of a given size, count and rate,
// for trials. Each is "<number> <unix nanoseconds> " padded with 'x', so a
// reader can tell what is missing, what came twice and how long it took.
type generateSource struct {
	size  int
	count int     // 0: until stopped
	rate  float64 // messages per second; 0: as fast as the window allows
}

func (g generateSource) run(ctx context.Context, snd *sender) error {
	var limiter *rate.Limiter
	if g.rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(g.rate), 1)
	}
	for i := 1; g.count == 0 || i <= g.count; i++ {
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		if err := snd.send(ctx, generated(i, g.size, time.Now())); err != nil {
			return err
		}
	}
	return nil
}

// generated builds message i: its number and timestamp, padded to size
// (longer, if size cannot hold them).
func generated(i, size int, at time.Time) []byte {
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

// padding fills generated messages up to their size.
var padding = bytes.Repeat([]byte{'x'}, 64<<10)

// parseGenerated reads the number and timestamp of a generated message.
func parseGenerated(b []byte) (int, time.Time, bool) {
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
