package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

// deliverFunc takes a message the consuming side received, and when. A
// pipe calls it from one goroutine at a time; msg is not kept.
type deliverFunc func(msg []byte, now time.Time)

// receiver takes what a pipe's consuming side received: a message at a
// time, or, from a consumer that receives in batches, a batch at a time
// (the bench's own counting then costs less per message). A pipe calls it
// from one goroutine at a time; messages are not kept.
type receiver interface {
	deliver(msg []byte, now time.Time)
	deliverAll(msgs [][]byte, now time.Time)
}

// pipe is one mode of a bench run: a way to move messages from a sending
// side to a receiving side in this process, over one carrier. The
// receiving side runs from the start and hands each message to the
// deliverFunc the pipe was made with.
type pipe struct {
	// send hands one message over; it blocks while the client's bound on
	// messages in flight (a window, pending confirms, a buffer) is reached.
	send func(ctx context.Context, msg []byte) error
	// flush waits until the broker acknowledged everything sent, for the
	// raw clients that publish with acknowledgements; nil otherwise.
	flush func(ctx context.Context) error
	// failed reports the receiving side's failure, at most one.
	failed chan error
	// stats reports the protocol's resends and the duplicates it dropped
	// (reliable modes only; nil for raw).
	stats func() (resends, duplicates uint64)
	// close stops both sides and waits for the receiving one, then removes
	// what the pipe made on the broker.
	close func()
}

// fail reports err as the receiving side's failure, unless one was.
func (p *pipe) fail(err error) {
	select {
	case p.failed <- err:
	default:
	}
}

// reliablePipe is the protocol over car: a producer and a consumer
// controller on a fresh stream, configured as the service configures them.
// The consumer confirms each batch it receives. With durableDir, the
// producer keeps every message in a durable queue there until confirmed.
// With extra, messages go with its headers, or traced by its tracer.
func reliablePipe(ctx context.Context, car *bridge.Carrier, cfg bridge.Config, stream, durableDir string, log *slog.Logger, recv receiver, extra ...sendExtras) (*pipe, error) {
	var ex sendExtras
	if len(extra) > 0 {
		ex = extra[0]
	}
	cfg.Stream, cfg.ProducerID = stream, stream
	log = log.With("stream", stream)
	ps := cfg.ProducerSettings(log)
	if durableDir != "" {
		q, err := durable.Open(filepath.Join(durableDir, stream+".queue"), durable.Options{})
		if err != nil {
			return nil, err
		}
		ps.DurableQueue = q
	}
	producer, consumer, err := bridge.OpenStream(ctx, car, &cfg, ps, log)
	if err != nil {
		return nil, err
	}
	p := &pipe{failed: make(chan error, 1)}
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 2)
	go func() { ran <- producer.Run(runCtx) }()
	go func() { ran <- consumer.Run(runCtx) }()
	received := make(chan struct{})
	go func() {
		defer close(received)
		var msgs [][]byte
		err := consumer.Consume(runCtx, 4096, func(_ context.Context, batch []delivery.Delivery[[]byte]) error {
			now := time.Now()
			if ex.tracer != nil {
				for i := range batch {
					span := ex.tracer.Process(&batch[i])
					recv.deliver(batch[i].Message, now)
					ex.tracer.Confirmed(span)
				}
				return nil
			}
			for i := range batch {
				msgs = append(msgs, batch[i].Message)
			}
			recv.deliverAll(msgs, now)
			clear(msgs)
			msgs = msgs[:0]
			return nil
		})
		if err != nil && runCtx.Err() == nil {
			p.fail(fmt.Errorf("consumer: %w", err))
		}
	}()
	p.send = func(ctx context.Context, msg []byte) error {
		var err error
		switch {
		case ex.tracer != nil:
			_, err = ex.tracer.Send(ctx, producer, msg, nil)
		case ex.headers != nil:
			_, _, err = producer.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: msg, Headers: ex.headers})
		default:
			_, err = producer.Send(ctx, msg)
		}
		return err
	}
	p.stats = func() (uint64, uint64) { return producer.Stats().Resent, consumer.Stats().Duplicates }
	p.close = func() {
		producer.Close()
		consumer.Close()
		stop()
		<-received
		<-ran
		<-ran
	}
	return p, nil
}

// linkPipe sends each message as one frame over a carrier's links, with no
// protocol: the raw mode of tcp, whose only client is the carrier itself.
func linkPipe(ctx context.Context, car *bridge.Carrier, stream string, deliver deliverFunc) (*pipe, error) {
	in, err := car.OpenLink(ctx, stream, delivery.ConsumerEnd)
	if err != nil {
		return nil, err
	}
	out, err := car.OpenLink(ctx, stream, delivery.ProducerEnd)
	if err != nil {
		in.Close()
		return nil, err
	}
	p := &pipe{failed: make(chan error, 1), send: out.Send}
	recvCtx, stop := context.WithCancel(context.Background())
	received := make(chan struct{})
	go func() {
		defer close(received)
		for {
			f, err := in.Receive(recvCtx)
			if err != nil {
				if recvCtx.Err() == nil {
					p.fail(fmt.Errorf("receive: %w", err))
				}
				return
			}
			deliver(f.Data, time.Now())
			if f.Release != nil {
				f.Release()
			}
		}
	}()
	p.close = func() {
		stop()
		out.Close()
		in.Close()
		<-received
	}
	return p, nil
}
