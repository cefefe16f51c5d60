package workload

import (
	"io"
	"os"
	"time"
)

// IsTerminal reports whether w is a terminal, where a progress line can be
// rewritten in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ProgressPace is how often progress is shown on w, and what ends each
// line: rewritten in place five times a second on a terminal, a line a
// second elsewhere (a log, a pipe).
func ProgressPace(w io.Writer) (every time.Duration, end string) {
	if IsTerminal(w) {
		return 200 * time.Millisecond, "\r"
	}
	return time.Second, "\n"
}
