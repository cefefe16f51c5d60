package tcp

import (
	"log/slog"
	"sync"
	"time"
)

// warnInterval is the least time between two warnings of one kind that a
// peer causes (a refused connection, a bad handshake, garbage): a peer
// that repeats itself cannot flood the log. The counters (Listener.Stats,
// Link.Status) count every occurrence.
const warnInterval = 10 * time.Second

// throttle passes one warning of its kind per warnInterval and counts the
// ones it holds back. Its zero value passes the first warning. Safe for
// concurrent use.
type throttle struct {
	mu   sync.Mutex
	next time.Time // when the next warning may pass
	held uint64    // warnings held back since the last one passed
}

// allow reports whether a warning at now may be logged and, if so, how
// many were held back since the last one that was.
func (t *throttle) allow(now time.Time) (suppressed uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.held++
		return 0, false
	}
	suppressed, t.held = t.held, 0
	t.next = now.Add(warnInterval)
	return suppressed, true
}

// warn logs msg at warning level with args unless a warning of this kind
// passed less than warnInterval ago; the line says how many were held back
// since the last one ("suppressed"). It reports whether it logged.
func (t *throttle) warn(log *slog.Logger, msg string, args ...any) bool {
	suppressed, ok := t.allow(time.Now())
	if ok {
		log.Warn(msg, append(args, "suppressed", suppressed)...)
	}
	return ok
}
