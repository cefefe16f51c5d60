package delivery

import (
	"slices"
	"strings"
	"sync/atomic"
)

// WorkPullingStats is a snapshot of a work-pulling producer's counters:
// counts are totals over its lifetime, Workers is who is served now.
type WorkPullingStats struct {
	Taken       uint64 // messages taken from the application
	Confirmed   uint64 // confirmed by the worker that finally got them
	Refused     uint64 // refused as larger than a worker takes (their Confirmations fail)
	Unconfirmed int    // taken and not confirmed: in flight, or waiting for a worker
	Waiting     int    // handed back and not yet handed to another worker
	HandedBack  uint64 // messages handed back by workers that left or died
	Resent      uint64 // handed-back messages given to another worker (these alone may arrive twice)
	Joined      uint64 // workers served, over the lifetime
	Left        uint64 // workers no longer served: left, failed, silent
	TimedOut    uint64 // of those, silent past WorkerTimeout
	// HellosRefused counts the hellos of new workers refused because
	// MaxWorkers were served; HellosIgnored those within joinEvery of the
	// last worker's.
	HellosRefused, HellosIgnored uint64
	WrongMode                    uint64 // frames of point-to-point peers refused on the stream
	BadFrames                    uint64 // work frames that did not decode
	Demand                       int    // all workers' demand together
	Workers                      []WorkerStats
}

// WorkerStats is one worker as its producer sees it.
type WorkerStats struct {
	ID        string
	Demand    int    // how many more sequence numbers its stream takes now
	InFlight  int    // messages handed to it and not confirmed
	HandedOut uint64 // messages handed to it
	Confirmed uint64 // of those, confirmed
	Stream    ProducerStats
}

// Granted reports whether the worker has granted its window: its
// registration or its first request reached the producer. Until then it
// may be handed one message only, so a burst sent to workers that have
// just joined goes to those that granted (wait for this before measuring
// how work spreads: GrantedWorkers).
func (ws WorkerStats) Granted() bool {
	return ws.Stream.Registrations > 0 || ws.Stream.RequestedSeqNr > 1
}

// GrantedWorkers counts the workers that have granted their window (see
// WorkerStats.Granted).
func (s WorkPullingStats) GrantedWorkers() int {
	n := 0
	for _, w := range s.Workers {
		if w.Granted() {
			n++
		}
	}
	return n
}

type wpCounters struct {
	taken, confirmed, refused, handedBack, resent atomic.Uint64
	joined, left, timedOut, hellosRefused         atomic.Uint64
	hellosIgnored, wrongMode, badFrames           atomic.Uint64
}

// Stats returns the controller's counters and its workers', sorted by ID.
// It is safe to call at any time from any goroutine.
func (w *WorkPullingProducerController[T]) Stats() WorkPullingStats {
	c := &w.c
	st := WorkPullingStats{
		Taken: c.taken.Load(), Confirmed: c.confirmed.Load(), Refused: c.refused.Load(),
		HandedBack: c.handedBack.Load(), Resent: c.resent.Load(),
		Joined: c.joined.Load(), Left: c.left.Load(), TimedOut: c.timedOut.Load(),
		HellosRefused: c.hellosRefused.Load(), HellosIgnored: c.hellosIgnored.Load(),
		WrongMode: c.wrongMode.Load(), BadFrames: c.badFrames.Load(),
	}
	w.mu.Lock()
	st.Unconfirmed, st.Waiting = w.open, len(w.requeue)
	for _, wk := range w.workers {
		ws := WorkerStats{ID: wk.id, InFlight: len(wk.inflight) - wk.head, HandedOut: wk.handedOut, Confirmed: wk.confirmed}
		if !wk.gone {
			ws.Demand = int(wk.p.intake.demandNow())
		}
		st.Demand += ws.Demand
		st.Workers = append(st.Workers, ws)
	}
	ps := make([]*ProducerController[[]byte], len(st.Workers))
	for i, ws := range st.Workers {
		ps[i] = w.workers[ws.ID].p
	}
	w.mu.Unlock()
	for i := range st.Workers {
		st.Workers[i].Stream = ps[i].Stats()
	}
	slices.SortFunc(st.Workers, func(a, b WorkerStats) int { return strings.Compare(a.ID, b.ID) })
	return st
}
