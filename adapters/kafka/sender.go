package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// Record batch accounting: what a frame costs in a produce request beyond
// its bytes, and what the batch itself costs (Kafka's v2 format needs 28 and
// 61; the rest is margin).
const (
	recordCost = 64
	batchCost  = 256
)

// sender writes a link's outgoing frames to partition 0 of its topic, in
// order, acknowledged by all in-sync replicas (acks=all).
//
// Send queues a copy of the frame and returns; one goroutine (run) takes the
// oldest queued frames that fit one record batch, produces them, and drops
// them from the queue once the broker acknowledged them. One produce request
// is in flight at a time, so frames reach the log in the order Send took
// them, and the frames queued meanwhile go together in the next request. A
// failed produce is retried with backoff until it succeeds or the link
// closes: a frame Send took is written at least once (kafka-go has no
// idempotent producer, so a retry after a lost acknowledgement writes it
// twice; the protocol drops the duplicate).
type sender struct {
	client       *kafkago.Client
	topic        string
	cfg          *Config
	maxBytes     int // the largest record batch the topic takes
	log          *slog.Logger
	ensureTopics func(context.Context) error // re-creates the stream's topics

	mu       sync.Mutex
	queue    [][]byte      // taken by Send, not yet acknowledged; the head may be in flight
	queued   int           // bytes in queue
	closing  bool          // Send takes no more frames; run drains the queue and returns
	room     chan struct{} // closed and replaced when the queue shrinks or closing is set
	wake     chan struct{} // run's doorbell: frames queued or closing set
	maxBatch int           // frames per request after the broker refused a batch as too large; 0: no limit
}

func newSender(client *kafkago.Client, topic string, cfg *Config, maxBytes int, log *slog.Logger, ensureTopics func(context.Context) error) *sender {
	return &sender{
		client: client, topic: topic, cfg: cfg, maxBytes: maxBytes, log: log, ensureTopics: ensureTopics,
		room: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
}

// send queues a copy of frame, waiting while SendBufferBytes are queued.
func (s *sender) send(ctx context.Context, frame []byte) error {
	data := bytes.Clone(frame)
	if data == nil {
		data = []byte{}
	}
	s.mu.Lock()
	for {
		if s.closing {
			s.mu.Unlock()
			return fmt.Errorf("kafka: send: %w", delivery.ErrLinkClosed)
		}
		if s.queued == 0 || s.queued+len(data) <= s.cfg.SendBufferBytes {
			s.queue = append(s.queue, data)
			s.queued += len(data)
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
			return nil
		}
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
}

// close makes Send refuse frames and lets run return once the queue is
// written; the caller bounds that by cancelling run's context.
func (s *sender) close() {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.room)
		s.room = make(chan struct{})
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run writes queued frames until the sender is closed and drained, or ctx
// ends.
func (s *sender) run(ctx context.Context) {
	failures := 0
	wait := s.cfg.retryWaits()
	for {
		batch, full := s.next(ctx)
		if batch == nil {
			break
		}
		if !full && s.cfg.BatchTimeout > 0 && !s.isClosing() {
			if !backoff.Sleep(ctx, s.cfg.BatchTimeout) {
				break
			}
			if batch, _ = s.next(ctx); batch == nil {
				break
			}
		}
		err := s.produce(ctx, batch)
		if err == nil {
			if failures > 0 {
				s.log.Info("kafka: writes resumed", "topic", s.topic, "failed_attempts", failures)
			}
			failures = 0
			wait.Reset()
			s.written(len(batch))
			continue
		}
		if ctx.Err() != nil {
			break
		}
		failures++
		switch {
		case errors.Is(err, kafkago.MessageSizeTooLarge) || errors.Is(err, kafkago.RecordListTooLarge):
			if len(batch) > 1 {
				s.setMaxBatch(len(batch) / 2)
				continue
			}
			s.log.Error("kafka: the broker refuses a frame as too large; dropping it (raise the topic's max.message.bytes, or lower Config.MaxMessageBytes)",
				"topic", s.topic, "bytes", len(batch[0]), "err", err)
			s.written(1)
			continue
		case topicMissing(err):
			s.log.Warn("kafka: topic missing; creating it again", "topic", s.topic, "err", err)
			if err := s.ensureTopics(ctx); err != nil {
				s.log.Warn("kafka: could not create the topic", "topic", s.topic, "err", err)
			}
		case failures%30 == 1:
			s.log.Warn("kafka: write failed; retrying until it succeeds", "topic", s.topic, "frames", len(batch), "attempt", failures, "err", err)
		default:
			s.log.Debug("kafka: write failed again", "topic", s.topic, "attempt", failures, "err", err)
		}
		if !backoff.Sleep(ctx, wait.Next()) {
			break
		}
	}
	s.mu.Lock()
	if n := len(s.queue); n > 0 {
		s.log.Warn("kafka: link closed with frames not written; the protocol resends what they carried", "topic", s.topic, "frames", n)
	}
	s.mu.Unlock()
}

func (s *sender) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *sender) setMaxBatch(n int) {
	s.mu.Lock()
	s.maxBatch = max(n, 1)
	s.mu.Unlock()
}

// next waits for queued frames and returns the oldest that fit one record
// batch, and whether the batch is full. It returns nil once the sender is
// closed and drained, or ctx ends.
func (s *sender) next(ctx context.Context) ([][]byte, bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			budget := s.maxBytes - batchCost
			n, cost := 0, 0
			for n < len(s.queue) && (n == 0 || cost+len(s.queue[n])+recordCost <= budget) && (s.maxBatch == 0 || n < s.maxBatch) {
				cost += len(s.queue[n]) + recordCost
				n++
			}
			batch, full := s.queue[:n:n], n < len(s.queue)
			s.mu.Unlock()
			return batch, full
		}
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil, false
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// written drops the n oldest frames, acknowledged (or given up).
func (s *sender) written(n int) {
	s.mu.Lock()
	for _, f := range s.queue[:n] {
		s.queued -= len(f)
	}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	s.maxBatch = 0
	close(s.room)
	s.room = make(chan struct{})
	s.mu.Unlock()
}

// produce writes batch as one record batch with acks=all.
func (s *sender) produce(ctx context.Context, batch [][]byte) error {
	records := make([]kafkago.Record, len(batch))
	now := time.Now() // the record's time, which retention goes by
	for i, f := range batch {
		records[i] = kafkago.Record{Time: now, Value: kafkago.NewBytes(f)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.client.Produce(ctx, &kafkago.ProduceRequest{
		Topic:        s.topic,
		Partition:    0,
		RequiredAcks: kafkago.RequireAll,
		Records:      kafkago.NewRecordReader(records...),
	})
	if err != nil {
		return err
	}
	return res.Error
}

// topicMissing reports an error saying a topic or its partition is not
// there (deleted, or a broker that lost its data).
func topicMissing(err error) bool {
	return errors.Is(err, kafkago.UnknownTopicOrPartition) ||
		errors.Is(err, protocol.ErrNoTopic) || errors.Is(err, protocol.ErrNoPartition)
}
