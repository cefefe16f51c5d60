// Package backoff spaces the attempts of a retry loop: a carrier
// reconnecting to its broker or its peer, a write or a commit tried again,
// a webhook POSTed again. Every such loop in the project uses it, so they
// all back off the same way.
//
// The waits double from Policy.Min up to Policy.Max, and each is shortened
// by up to a fifth at random, so that links that broke together (every
// link of a broker that restarted) do not retry in lockstep. A Backoff is
// used by one goroutine; its zero value is not useful, make one with New.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy bounds the waits of a Backoff.
type Policy struct {
	// Min is the first wait. At least a nanosecond.
	Min time.Duration
	// Max caps the waits; a Max below Min is taken as Min.
	Max time.Duration
}

// Backoff is the wait sequence of one retry loop.
type Backoff struct {
	p   Policy
	cur time.Duration // the last wait before jitter; 0 before the first
}

// New returns a Backoff whose first wait is about p.Min.
func New(p Policy) *Backoff {
	p.Min = max(p.Min, time.Nanosecond)
	p.Max = max(p.Max, p.Min)
	return &Backoff{p: p}
}

// Next returns the wait before the next attempt: Min at first, then twice
// the one before, up to Max, each less up to 20% at random.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.p.Min
	case b.cur < b.p.Max:
		b.cur = min(2*b.cur, b.p.Max)
	}
	return b.cur - time.Duration(rand.Int64N(int64(b.cur)/5+1))
}

// Reset starts the sequence again from Min: call it after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits for d, or until ctx ends. It reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
