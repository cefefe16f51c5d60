package bridge

import (
	"context"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// A source feeds the producer. run returns nil when its input is exhausted
// (stdin at its end, the generator's count reached), ctx's error when the
// service stops it, or why it failed.
type source interface {
	run(ctx context.Context, s *sender) error
}

// sender sends for a source, traces what tr samples, and samples the time from acceptance to the
// consumer's confirmation into the latency histogram: every sampleEvery-th
// message goes with a confirmation, and one goroutine waits for them in
// order (confirmations resolve in sequence order).
type sender struct {
	p       sendingProducer
	m       *metrics
	tr      *tracer
	n       uint64
	samples chan sample
	done    chan struct{}
}

type sample struct {
	c  *delivery.Confirmation
	at time.Time
}

const sampleEvery = 64

func newSender(p sendingProducer, m *metrics, tr *tracer) *sender {
	s := &sender{p: p, m: m, tr: tr, samples: make(chan sample, 4096), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for sm := range s.samples {
			<-sm.c.Done() // resolves with an error if the producer stops first
			if sm.c.Err() == nil {
				m.observe(time.Since(sm.at))
			}
		}
	}()
	return s
}

func (s *sender) send(ctx context.Context, msg []byte) error {
	s.n++
	span, hs := s.tr.produce(ctx, nil)
	timed := s.n%sampleEvery == 0
	at := time.Now()
	seqNr, c, err := s.p.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: msg, Headers: hs, Confirm: timed})
	produced(span, s.p.ID(), seqNr, err)
	if err != nil || !timed {
		return err
	}
	select {
	case s.samples <- sample{c: c, at: at}:
	default: // the sampler lags: skip this sample rather than slow the source
	}
	return nil
}

// close stops the sampler once the producer has stopped (which resolves
// every confirmation it waits on).
func (s *sender) close() {
	close(s.samples)
	<-s.done
}
