package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/bridge-mq/bridge/delivery"
	kafkago "github.com/segmentio/kafka-go"
)

// receiverQueue is how many messages kafka-go's Reader fetches ahead of
// Receive. Frames run up to a megabyte, so it stays small.
const receiverQueue = 16

// FetchBatches is how many of the largest record batches a topic takes
// (Config.MaxMessageBytes, or the topic's max.message.bytes) one fetch may
// bring: the Reader's MaxBytes, 8 MiB at Kafka's default. The Reader asks for
// the next fetch only once Receive has taken the last one's frames, so with
// frames near the limit (large messages, a full window) 2 cost a round trip
// to the broker every two frames. kafka-go reads a fetch's answer as Receive
// takes its frames: this bounds a round trip's worth, not memory
// (receiverQueue does). Kafka's own consumer asks for up to 50 MiB a fetch.
const FetchBatches = 8

// receiver reads a link's incoming frames from partition 0 of its topic with
// a kafka-go Reader bound to that partition (no consumer group: see the
// package documentation). One goroutine (run) calls FetchMessage, which never
// commits, and hands each frame to Receive; on the consumer end each frame
// carries a Release that feeds the releaseTracker.
//
// kafka-go's Reader reconnects by itself and reports the errors it keeps
// meeting through FetchMessage; run logs them and carries on, so Receive
// blocks across reconnects. One error it acts on: a log shorter than the
// offset the link reached (OffsetOutOfRange when kafka-go reconnects) means
// the broker lost data or the topic was re-created, and the link starts over
// from the log's first offset.
type receiver struct {
	reader       *kafkago.Reader
	topic        string
	tracker      *releaseTracker // nil on the producer end: control frames are not committed
	log          *slog.Logger
	ensureTopics func(context.Context) error
	frames       chan delivery.Frame

	// The offsets of the first and the latest frame handed to Receive (-1:
	// none yet), and how often the log was found shorter than the offset
	// reached: for tests.
	firstOffset, lastOffset atomic.Int64
	restarts                atomic.Uint64
}

func newReader(cfg *Config, conns *connTracker, topic string, maxMessageBytes int, start int64, log *slog.Logger) (*kafkago.Reader, error) {
	mechanism, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:   cfg.Brokers,
		Topic:     topic,
		Partition: 0,
		Dialer: &kafkago.Dialer{
			ClientID:      cfg.ClientID,
			DialFunc:      conns.dialFunc(true),
			Timeout:       cfg.DialTimeout,
			TLS:           cfg.TLS,
			SASLMechanism: mechanism,
		},
		QueueCapacity:   receiverQueue,
		MinBytes:        1,
		MaxBytes:        FetchBatches * maxMessageBytes,
		MaxWait:         cfg.FetchMaxWait,
		ReadLagInterval: -1,
		ReadBackoffMin:  ReaderRedialBackoff,
		ReadBackoffMax:  cfg.RetryBackoff,
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			log.Debug("kafka-go reader", "topic", topic, "msg", fmt.Sprintf(format, args...))
		}),
		OffsetOutOfRangeError: true,
	})
	if err := r.SetOffset(start); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// run reads frames until ctx ends or the Reader is closed.
func (r *receiver) run(ctx context.Context) {
	failing := false
	for {
		m, err := r.reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			failing = r.onError(ctx, err, failing)
			continue
		}
		if failing {
			failing = false
			r.log.Info("kafka: reading again", "topic", r.topic, "offset", m.Offset)
		}
		f := delivery.Frame{Data: m.Value}
		if r.tracker != nil {
			f.Release = r.tracker.add(m.Offset)
		}
		select {
		case r.frames <- f:
			r.firstOffset.CompareAndSwap(-1, m.Offset)
			r.lastOffset.Store(m.Offset)
		case <-ctx.Done():
			return
		}
	}
}

// onError deals with an error FetchMessage returned and reports whether the
// receiver is failing.
func (r *receiver) onError(ctx context.Context, err error, failing bool) bool {
	switch {
	case errors.Is(err, kafkago.OffsetOutOfRange):
		r.log.Warn("kafka: the topic's log is shorter than the offset this link reached: the broker lost data or the topic was re-created; reading again from its first offset",
			"topic", r.topic, "offset", r.reader.Offset(), "err", err)
		r.restarts.Add(1)
		if r.tracker != nil {
			r.tracker.reset()
		}
		if err := r.reader.SetOffset(kafkago.FirstOffset); err != nil {
			return failing // closed
		}
		return failing
	case topicMissing(err):
		r.log.Warn("kafka: topic missing; creating it again", "topic", r.topic, "err", err)
		if err := r.ensureTopics(ctx); err != nil {
			r.log.Warn("kafka: could not create the topic", "topic", r.topic, "err", err)
		}
	case !failing:
		r.log.Warn("kafka: read failed; kafka-go keeps retrying", "topic", r.topic, "err", err)
	default:
		r.log.Debug("kafka: read failed again", "topic", r.topic, "err", err)
	}
	return true
}
