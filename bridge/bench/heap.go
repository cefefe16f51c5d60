package bench

import (
	runtimemetrics "runtime/metrics"
	"time"
)

// heapSampler follows the Go heap while a run goes on and keeps its peak:
// the process's resident size would not do, since the runtime keeps memory
// an earlier run freed. Sampling every few milliseconds catches the buffers
// a client fills under load; it can miss a peak shorter than that.
type heapSampler struct {
	stop chan struct{}
	peak chan uint64
}

const heapSampleEvery = 5 * time.Millisecond

// heapObjects is the heap occupied by objects, live and not yet swept.
const heapObjects = "/memory/classes/heap/objects:bytes"

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), peak: make(chan uint64, 1)}
	sample := []runtimemetrics.Sample{{Name: heapObjects}}
	read := func() uint64 {
		runtimemetrics.Read(sample)
		if sample[0].Value.Kind() != runtimemetrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	peak := read()
	go func() {
		tick := time.NewTicker(heapSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				peak = max(peak, read())
			case <-h.stop:
				h.peak <- max(peak, read())
				return
			}
		}
	}()
	return h
}

// done stops the sampler and returns the peak in bytes.
func (h *heapSampler) done() uint64 {
	close(h.stop)
	return <-h.peak
}
