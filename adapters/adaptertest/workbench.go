package adaptertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// WorkPullingRate runs a work-pulling producer and workers workers on a
// fresh stream of opener's carrier, each worker spending cost on every
// message (a sink's work) before it confirms it, and returns messages per
// second from the first send until all n are confirmed. window is each
// worker's demand.
func WorkPullingRate(tb testing.TB, opener delivery.LinkOpener, workers, n, window int, cost time.Duration, payload []byte) float64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := fmt.Sprintf("wpbench-%d-%d", startedAt, streamSeq.Add(1))
	ps, ws := WorkPullingSettings()
	ws.Window = window
	p, err := delivery.NewWorkPullingProducerController[[]byte](opener, s, nil, ps)
	if err != nil {
		tb.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	defer func() { p.Close(); <-ran }()
	var wg sync.WaitGroup
	for k := range workers {
		ws.WorkerID = fmt.Sprint("b", k)
		c, err := delivery.NewWorkerController[[]byte](ctx, opener, s, nil, ws)
		if err != nil {
			tb.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); c.Run(ctx) }()
		go func() {
			defer wg.Done()
			for {
				d, err := c.Receive(ctx)
				if err != nil {
					return
				}
				time.Sleep(cost)
				d.Confirm()
			}
		}()
		defer c.Close()
	}
	for p.Stats().GrantedWorkers() < workers {
		select {
		case <-time.After(5 * time.Millisecond): // polling Stats until every worker granted its window
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		}
	}
	start := time.Now()
	var last *delivery.Confirmation
	for range n {
		if last, err = p.SendWithConfirmation(ctx, payload); err != nil {
			tb.Fatal(err)
		}
	}
	for p.Stats().Confirmed < uint64(n) {
		if err := last.Wait(ctx); err != nil {
			tb.Fatal(err)
		}
		select {
		case <-time.After(time.Millisecond): // the last sent may be confirmed before others
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
