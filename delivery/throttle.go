package delivery

import (
	"sync"
	"time"
)

// throttleEvery is how often a warning a peer can cause is logged, at
// most: a peer must not be able to flood the log. The counters count every
// occurrence.
const throttleEvery = 10 * time.Second

// throttle lets a warning through at most once per throttleEvery, and
// counts the ones it held back. Its zero value is ready; safe for
// concurrent use.
type throttle struct {
	mu    sync.Mutex
	last  time.Time
	since int
}

// allow reports whether to log now and how many were held back since the
// last one logged.
func (t *throttle) allow(now time.Time) (ok bool, since int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < throttleEvery {
		t.since++
		return false, 0
	}
	since = t.since
	t.last, t.since = now, 0
	return true, since
}
