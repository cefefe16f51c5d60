package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

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
func Demo(ctx context.Context, cfg Config, env Env) error {
	count := cfg.GenerateCount
	if count == 0 {
		count = DefaultDemoCount
	}
	cfg.Role = "demo"
	if cfg.Transport == "tcp" {
		cfg.TCPAddr = "127.0.0.1:0" // both ends are here: any free port
	}
	log := env.Log.With("stream", cfg.Stream)
	car, err := openCarrier(ctx, &cfg, env.Log, delivery.ConsumerEnd, delivery.ProducerEnd)
	if err != nil {
		return err
	}
	defer car.close()
	consumerLink, err := car.open(ctx, cfg.Stream, delivery.ConsumerEnd)
	if err != nil {
		return err
	}
	producerLink, err := car.open(ctx, cfg.Stream, delivery.ProducerEnd)
	if err != nil {
		consumerLink.Close()
		return err
	}
	consumer, err := delivery.NewConsumerController[[]byte](consumerLink, nil, consumerSettings(&cfg, log))
	if err != nil {
		return err
	}
	producer, err := delivery.NewProducerController[[]byte](producerLink, nil, producerSettings(&cfg, log))
	if err != nil {
		consumer.Close()
		return err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go consumer.Run(runCtx)
	go producer.Run(runCtx)
	defer producer.Close()
	defer consumer.Close()

	m := newMetrics(&cfg)
	snd := newSender(producer, m)
	defer snd.close()
	tally := newTally(count)
	fmt.Fprintf(env.Stdout, "bridge demo: %d messages of %d bytes over %s, window %d\n", count, cfg.GenerateSize, car.name, cfg.Window)
	start := time.Now()
	fed := make(chan error, 1)
	go func() {
		fed <- generateSource{size: cfg.GenerateSize, count: count, rate: cfg.GenerateRate}.run(ctx, snd)
	}()
	progressDone := make(chan struct{})
	stopProgress := showProgress(env.Stderr, start, producer, tally, progressDone)

	var runErr error
	for tally.distinct.Load() < int64(count) && runErr == nil {
		batch, err := consumer.ReceiveBatch(ctx, nil, 4096)
		if err != nil {
			runErr = err
			break
		}
		now := time.Now()
		for _, d := range batch {
			tally.add(d.Message, now)
		}
		batch[len(batch)-1].Confirm()
	}
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	if errors.Is(runErr, context.Canceled) {
		fmt.Fprintln(env.Stdout, "interrupted")
	} else if runErr != nil {
		return runErr
	}
	if err := <-fed; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	shutdownWithin(cfg.ShutdownTimeout, producer.Shutdown)
	tally.report(env.Stdout, producer.Stats().AcceptedSeqNr, count, cfg.GenerateSize, elapsed, runErr != nil)
	if lost := tally.lost(count); lost > 0 && runErr == nil {
		return fmt.Errorf("%d messages lost", lost)
	}
	return nil
}

// tally counts what a consumer received of generated messages.
type tally struct {
	seen       []bool
	distinct   atomic.Int64
	delivered  atomic.Int64
	duplicates atomic.Int64
	malformed  int
	latencies  []time.Duration
}

func newTally(count int) *tally {
	return &tally{seen: make([]bool, count+1), latencies: make([]time.Duration, 0, min(count, 1<<20))}
}

func (t *tally) add(msg []byte, now time.Time) {
	t.delivered.Add(1)
	i, at, ok := parseGenerated(msg)
	if !ok || i < 1 || i >= len(t.seen) {
		t.malformed++
		return
	}
	if t.seen[i] {
		t.duplicates.Add(1)
		return
	}
	t.seen[i] = true
	t.distinct.Add(1)
	if len(t.latencies) < cap(t.latencies) {
		t.latencies = append(t.latencies, now.Sub(at))
	}
}

func (t *tally) lost(count int) int { return count - int(t.distinct.Load()) }

func (t *tally) report(w io.Writer, sent delivery.SeqNr, count, size int, elapsed time.Duration, interrupted bool) {
	rate := float64(t.distinct.Load()) / elapsed.Seconds()
	fmt.Fprintf(w, "  sent        %d\n", sent)
	fmt.Fprintf(w, "  delivered   %d\n", t.delivered.Load())
	fmt.Fprintf(w, "  duplicates  %d\n", t.duplicates.Load())
	lost := fmt.Sprint(t.lost(count))
	if interrupted {
		lost += " (interrupted before the end)"
	}
	fmt.Fprintf(w, "  lost        %s\n", lost)
	fmt.Fprintf(w, "  elapsed     %.2f s\n", elapsed.Seconds())
	fmt.Fprintf(w, "  throughput  %.0f msgs/s (%.1f MB/s)\n", rate, rate*float64(size)/1e6)
	if p := percentiles(t.latencies); p != nil {
		fmt.Fprintf(w, "  latency     p50 %s  p90 %s  p99 %s  max %s\n", ms(p[0]), ms(p[1]), ms(p[2]), ms(p[3]))
	}
}

// percentiles returns p50, p90, p99 and max of ds (sorted in place), or nil.
func percentiles(ds []time.Duration) []time.Duration {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return []time.Duration{at(0.50), at(0.90), at(0.99), ds[len(ds)-1]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// showProgress writes a progress line to w until stop is closed: in place
// on a terminal, a line a second otherwise.
func showProgress(w io.Writer, start time.Time, p *delivery.ProducerController[[]byte], t *tally, done chan<- struct{}) chan<- struct{} {
	stop := make(chan struct{})
	every, end := time.Second, "\n"
	if isTerminal(w) {
		every, end = 200*time.Millisecond, "\r"
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		line := func() {
			elapsed := time.Since(start).Seconds()
			fmt.Fprintf(w, "sent %d  delivered %d  duplicates %d  %.0f msgs/s   %s",
				p.Stats().AcceptedSeqNr, t.delivered.Load(), t.duplicates.Load(), float64(t.distinct.Load())/elapsed, end)
		}
		for {
			select {
			case <-tick.C:
				line()
			case <-stop:
				if end == "\r" {
					line()
					fmt.Fprintln(w)
				}
				return
			}
		}
	}()
	return stop
}
