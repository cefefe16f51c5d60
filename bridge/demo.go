package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bridge-mq/bridge/bridge/internal/workload"
	"github.com/bridge-mq/bridge/delivery"
)

// DefaultDemoCount is how many messages the demo sends when
// BRIDGE_GENERATE_COUNT is unset.
const DefaultDemoCount = 100_000

// Demo runs both ends of a stream in this process (`bridge demo`): the
// generator feeds the producer, and a counting sink checks what arrives.
// TCP runs over loopback, and NATS on an embedded server when
// BRIDGE_NATS_URL is unset, so it needs nothing installed. It shows a
// progress line while it runs, then a summary: sent, delivered,
// duplicates, lost, throughput and latency. It fails if a message was lost.
// cfg must have passed ValidateDemo.
//
// Besides the controllers' goroutines it runs the generator and the
// progress line, and waits for both.
func Demo(ctx context.Context, cfg Config, env Env) error {
	count := cfg.GenerateCount
	if count == 0 {
		count = DefaultDemoCount
	}
	cfg.Role = "demo"
	// Both ends are here: any free port.
	cfg.TCPAddr, cfg.NATSEmbeddedAddr = "127.0.0.1:0", "127.0.0.1:0"
	log := env.Log.With("stream", cfg.Stream)
	car, err := OpenCarrier(ctx, &cfg, env.Log)
	if err != nil {
		return err
	}
	defer car.Close()
	producer, consumer, err := OpenStream(ctx, car, &cfg, cfg.ProducerSettings(log), log)
	if err != nil {
		return err
	}
	snd := newSender(producer, newMetrics(&cfg), nil)
	ran := make(chan error, 2)
	go func() { ran <- consumer.Run(context.Background()) }()
	go func() { ran <- producer.Run(context.Background()) }()
	defer func() {
		producer.Close()
		consumer.Close()
		<-ran
		<-ran
		snd.close() // once the producer stopped, which resolves what its sampler waits on
	}()

	tally := workload.NewTally(count)
	fmt.Fprintf(env.Stdout, "bridge demo: %d messages of %d bytes over %s, window %d\n", count, cfg.GenerateSize, car.Name, cfg.Window)
	start := time.Now()
	fed := make(chan error, 1)
	go func() {
		fed <- generateSource{size: cfg.GenerateSize, count: count, rate: cfg.GenerateRate}.run(ctx, snd)
	}()
	stopProgress := showProgress(env.Stderr, start, producer, tally)

	consuming, stopConsuming := context.WithCancel(ctx)
	err = consumer.Consume(consuming, 4096, func(_ context.Context, batch []delivery.Delivery[[]byte]) error {
		now := time.Now()
		for _, d := range batch {
			tally.Add(d.Message, now)
		}
		if tally.Distinct() >= int64(count) {
			stopConsuming() // once this batch is confirmed
		}
		return nil
	})
	stopConsuming()
	elapsed := time.Since(start)
	stopProgress()
	interrupted := ctx.Err() != nil
	switch {
	case interrupted:
		fmt.Fprintln(env.Stdout, "interrupted")
	case err != nil && !errors.Is(err, context.Canceled):
		return err
	case tally.Distinct() < int64(count):
		return fmt.Errorf("the consumer stopped with %d of %d messages in: %w", tally.Distinct(), count, delivery.ErrClosed)
	}
	if err := <-fed; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	producer.Shutdown(shutdownCtx)
	cancel()
	demoReport(env.Stdout, tally, producer.Stats().AcceptedSeqNr, cfg.GenerateSize, elapsed, interrupted)
	if lost := tally.Lost(); lost > 0 && !interrupted {
		return fmt.Errorf("%d messages lost", lost)
	}
	return nil
}

// demoReport writes the demo's summary.
func demoReport(w io.Writer, t *workload.Tally, sent delivery.SeqNr, size int, elapsed time.Duration, interrupted bool) {
	rate := float64(t.Distinct()) / elapsed.Seconds()
	fmt.Fprintf(w, "  sent        %d\n", sent)
	fmt.Fprintf(w, "  delivered   %d\n", t.Delivered())
	fmt.Fprintf(w, "  duplicates  %d\n", t.Duplicates())
	lost := fmt.Sprint(t.Lost())
	if interrupted {
		lost += " (interrupted before the end)"
	}
	fmt.Fprintf(w, "  lost        %s\n", lost)
	fmt.Fprintf(w, "  elapsed     %.2f s\n", elapsed.Seconds())
	fmt.Fprintf(w, "  throughput  %.0f msgs/s (%.1f MB/s)\n", rate, rate*float64(size)/1e6)
	if p := workload.Percentiles(t.Latencies()); p != nil {
		fmt.Fprintf(w, "  latency     p50 %s  p90 %s  p99 %s  max %s\n",
			workload.Millis(p[0]), workload.Millis(p[1]), workload.Millis(p[2]), workload.Millis(p[3]))
	}
}

// showProgress writes a progress line to w until the returned stop is
// called: in place on a terminal, a line a second otherwise.
func showProgress(w io.Writer, start time.Time, p *delivery.ProducerController[[]byte], t *workload.Tally) (stop func()) {
	every, end := workload.ProgressPace(w)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		line := func() {
			elapsed := time.Since(start).Seconds()
			fmt.Fprintf(w, "sent %d  delivered %d  duplicates %d  %.0f msgs/s   %s",
				p.Stats().AcceptedSeqNr, t.Delivered(), t.Duplicates(), float64(t.Distinct())/elapsed, end)
		}
		for {
			select {
			case <-tick.C:
				line()
			case <-quit:
				if end == "\r" {
					line()
					fmt.Fprintln(w)
				}
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
