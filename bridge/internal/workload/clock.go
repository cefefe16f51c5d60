package workload

import "time"

// Clock stamps Messages with the wall clock at about half the cost of
// time.Now: it reads only the monotonic clock and adds what passed to the
// wall time it started at. A sender reads it for every message it makes,
// and on this kind of virtual machine each clock read through the vDSO
// costs about 35 ns, which the bench would otherwise count against every
// carrier. A step of the wall clock after the start is not seen: a stamp
// says when, by the start's wall clock, the message was made.
type Clock struct{ start time.Time }

// NewClock returns a Clock started now.
func NewClock() Clock { return Clock{start: time.Now()} }

// Now is the start's wall time plus the monotonic time since.
func (c Clock) Now() time.Time { return c.start.Add(time.Since(c.start)) }
