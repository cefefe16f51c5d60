//go:build !unix

package bench

import "time"

// cpuTime cannot tell this process's CPU time here: the bench reports none.
func cpuTime() (time.Duration, bool) { return 0, false }
