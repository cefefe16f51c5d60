package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// natsQueueGroup is core NATS's competing consumers: workers subscribers
// in one queue group, each on its connection. Core NATS is at most once: a
// killed subscriber's connection closes with what the server had sent it,
// and that is lost. A subscriber gets one publisher's messages in order.
func natsQueueGroup(url string, opts []natsgo.Option) *workMechanism {
	return &workMechanism{
		mode:       report.Competing,
		client:     "nats.go: subscribers in one queue group, each on its connection, no pending limit; core publishes (at most once)",
		ordering:   report.PerWorker,
		atMostOnce: true,
		open: func(ctx context.Context, stream string, workers int, tally *workTally) (*workPipe, error) {
			return natsQueueGroupPipe(url, opts, "bench.competing."+stream, workers, tally)
		},
	}
}

func natsQueueGroupPipe(url string, opts []natsgo.Option, subject string, workers int, tally *workTally) (*workPipe, error) {
	p := &workPipe{failed: make(chan error, 1)}
	var conns []*natsgo.Conn
	p.close = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	pub, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench competing publisher"))...)
	if err != nil {
		return nil, err
	}
	conns = append(conns, pub)
	for k := range workers {
		c, err := natsgo.Connect(url, append(opts, natsgo.Name(fmt.Sprint("bridge bench queue subscriber ", k)))...)
		if err != nil {
			p.close()
			return nil, err
		}
		conns = append(conns, c)
		s, err := c.QueueSubscribe(subject, "workers", func(m *natsgo.Msg) { tally.work(k, k, m.Data) })
		if err == nil {
			err = s.SetPendingLimits(-1, -1)
		}
		if err == nil {
			err = c.Flush() // subscribed before the first publish
		}
		if err != nil {
			p.close()
			return nil, err
		}
	}
	p.send = func(_ context.Context, msg []byte) error { return pub.Publish(subject, msg) }
	p.flush = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute) // nats.go asks for a deadline
		defer cancel()
		return pub.FlushWithContext(ctx)
	}
	p.kill = func() { conns[1].Close() }
	return p, nil
}

// jetStreamShared is JetStream's competing consumers: one durable pull
// consumer, acks explicit, shared by workers subscribers each on its
// connection, each pulling up to the window; asynchronous publishes, each
// acknowledged. What a killed subscriber had not acked is redelivered
// after AckWait, here the service's BRIDGE_WORKER_TIMEOUT, so that both
// notice a death as late. A subscriber's pulls come in stream order, and a
// redelivered message comes out of it.
func jetStreamShared(url string, opts []natsgo.Option, window int, ackWait time.Duration, log *slog.Logger) *workMechanism {
	return &workMechanism{
		mode:     report.Competing,
		client:   fmt.Sprintf("nats.go JetStream: one durable pull consumer shared by the workers, acks explicit, %d pulled at most by each, AckWait %s; asynchronous publishes, each acknowledged", window, ackWait),
		ordering: report.PerWorker + ", but for redelivered messages",
		open: func(ctx context.Context, stream string, workers int, tally *workTally) (*workPipe, error) {
			name := "bench_competing_" + stream
			return jetStreamSharedPipe(ctx, url, opts, name, "bench.competing."+stream, workers, window, ackWait, tally, log)
		},
	}
}

func jetStreamSharedPipe(ctx context.Context, url string, opts []natsgo.Option, name, subject string, workers, window int, ackWait time.Duration, tally *workTally, log *slog.Logger) (*workPipe, error) {
	p := &workPipe{failed: make(chan error, 1)}
	pubConn, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench competing publisher"))...)
	if err != nil {
		return nil, err
	}
	var conns []*natsgo.Conn
	var ccs []jetstream.ConsumeContext
	var pubJS jetstream.JetStream
	p.close = func() {
		for _, cc := range ccs {
			cc.Stop()
			<-cc.Closed()
		}
		for _, c := range conns {
			c.Close()
		}
		if pubJS != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := pubJS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				log.Warn("competing jetstream: deleting the bench's stream", "stream", name, "err", err)
			}
			cancel()
		}
		pubConn.Close()
	}
	fail := func(err error) (*workPipe, error) {
		p.close()
		return nil, fmt.Errorf("competing jetstream: %w", err)
	}
	pubJS, err = jetstream.New(pubConn, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *natsgo.Msg, err error) {
		p.fail(fmt.Errorf("competing jetstream publish: %w", err))
	}))
	if err != nil {
		return fail(err)
	}
	if _, err := natscarrier.CreateStream(ctx, pubJS, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	}); err != nil {
		return fail(err)
	}
	if _, err := pubJS.CreateConsumer(ctx, name, jetstream.ConsumerConfig{
		Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxAckPending: window * workers,
	}); err != nil {
		return fail(err)
	}
	for k := range workers {
		c, err := natsgo.Connect(url, append(opts, natsgo.Name(fmt.Sprint("bridge bench jetstream worker ", k)))...)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, c)
		js, err := jetstream.New(c)
		if err != nil {
			return fail(err)
		}
		cons, err := js.Consumer(ctx, name, "workers")
		if err != nil {
			return fail(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			if tally.work(k, k, m.Data()) {
				if err := m.Ack(); err != nil && !tally.killed[k].Load() {
					p.fail(fmt.Errorf("competing jetstream ack: %w", err))
				}
			}
		}, jetstream.PullMaxMessages(window))
		if err != nil {
			return fail(err)
		}
		ccs = append(ccs, cc)
	}
	p.send = func(_ context.Context, msg []byte) error {
		_, err := pubJS.PublishAsync(subject, msg, jetstream.WithStallWait(time.Minute))
		return err
	}
	p.flush = func(ctx context.Context) error {
		select {
		case <-pubJS.PublishAsyncComplete():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("competing jetstream: %d publishes unacknowledged: %w", pubJS.PublishAsyncPending(), ctx.Err())
		}
	}
	p.kill = func() { conns[0].Close() }
	return p, nil
}
