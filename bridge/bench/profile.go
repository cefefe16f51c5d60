package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// startCPUProfile starts profiling the process into file, for
// BRIDGE_BENCH_CPU_PROFILE; the returned stop ends the profile and closes
// the file. With file "" it does nothing.
func startCPUProfile(file string) (stop func() error, err error) {
	if file == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// labelled runs f with the profile labels of one mode's run: the goroutines
// it starts (a pipe's controllers, its links' readers, the sender) carry
// them too, so a profile can be cut by mode (pprof -tagfocus=mode=headers).
// They cost a little once per run, nothing per message.
func labelled(ctx context.Context, t *target, size int, mode string, f func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels("transport", t.name, "size", report.SizeText(size), "mode", mode), func(ctx context.Context) {
		err = f(ctx)
	})
	return err
}
