package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery/backoff"
	kafkago "github.com/segmentio/kafka-go"
)

// kafkaDLQ keeps dead letters in a topic of their own (BRIDGE_DLQ=carrier
// with BRIDGE_TRANSPORT=kafka), one partition: a record a dead letter, its
// value the DeadLetter's JSON, its key the delivery's. record returns once
// every in-sync replica has it (acks=all). What has been replayed is the
// offset committed for the topic by a group of its own (the topic's name):
// list reads from there to the end, dropping a repeat of a delivery (a
// consumer killed between the record and the confirmation), and remove
// commits past what was confirmed. It starts no goroutine of its own
// beyond kafka-go's.
type kafkaDLQ struct {
	client  *kafkago.Client
	writer  *kafkago.Writer
	dialer  *kafkago.Dialer
	brokers []string
	topic   string
	timeout time.Duration

	mu    sync.Mutex
	cache struct { // of stats, for the offsets last seen
		from, end int64
		oldest    time.Time
	}
}

func openKafkaDLQ(ctx context.Context, cfg *Config, name string, log *slog.Logger) (*kafkaDLQ, error) {
	kcfg, err := cfg.KafkaConfig(log)
	if err != nil {
		return nil, err
	}
	mechanism, err := kcfg.SASLMechanism()
	if err != nil {
		return nil, err
	}
	topic := strings.TrimSuffix(cfg.KafkaTopicPrefix, ".") + "." + name
	transport := &kafkago.Transport{ClientID: "bridge", TLS: kcfg.TLS, SASL: mechanism, MetadataTopics: []string{topic}}
	q := &kafkaDLQ{
		client: &kafkago.Client{Addr: kafkago.TCP(cfg.KafkaBrokers...), Transport: transport, Timeout: 10 * time.Second},
		writer: &kafkago.Writer{
			Addr: kafkago.TCP(cfg.KafkaBrokers...), Topic: topic, Transport: transport,
			RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 3,
		},
		dialer:  &kafkago.Dialer{ClientID: "bridge", Timeout: 10 * time.Second, TLS: kcfg.TLS, SASLMechanism: mechanism},
		brokers: cfg.KafkaBrokers, topic: topic, timeout: 10 * time.Second,
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	res, err := q.client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: -1}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err == nil || errors.Is(err, kafkago.TopicAlreadyExists) {
		err = q.awaitLeader(ctx)
	}
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("dead-letter topic %s: %w", topic, err)
	}
	return q, nil
}

// awaitLeader returns once the topic's partition has a leader. Kafka answers
// CreateTopics before every broker knows the topic, and a write or an
// offset lookup in that moment fails with UnknownTopicOrPartition.
func (q *kafkaDLQ) awaitLeader(ctx context.Context) error {
	wait := backoff.New(backoff.Policy{Min: 10 * time.Millisecond, Max: 500 * time.Millisecond})
	for {
		res, err := q.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{q.topic}})
		if err == nil {
			for _, t := range res.Topics {
				if t.Name == q.topic && t.Error == nil && len(t.Partitions) > 0 && t.Partitions[0].Error == nil && t.Partitions[0].Leader.Host != "" {
					return nil
				}
				if t.Name == q.topic && t.Error != nil {
					err = t.Error
				}
			}
		}
		if !backoff.Sleep(ctx, wait.Next()) {
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("no leader yet: %w", err)
		}
	}
}

func (q *kafkaDLQ) String() string { return "Kafka topic " + q.topic }

func (q *kafkaDLQ) Close() error {
	err := q.writer.Close()
	if t, ok := q.client.Transport.(*kafkago.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}

func (q *kafkaDLQ) record(ctx context.Context, dls []DeadLetter) error {
	msgs := make([]kafkago.Message, len(dls))
	for i := range dls {
		body, err := json.Marshal(&dls[i])
		if err != nil {
			return err
		}
		msgs[i] = kafkago.Message{Key: []byte(dls[i].key()), Value: body, Time: dls[i].Time}
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	if err := q.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("dead-letter topic %s: %w", q.topic, err)
	}
	return nil
}

// offsets returns the first offset not yet replayed and the end.
func (q *kafkaDLQ) offsets(ctx context.Context) (from, end int64, err error) {
	lo, err := q.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		q.topic: {kafkago.FirstOffsetOf(0), kafkago.LastOffsetOf(0)},
	}})
	if err != nil {
		return 0, 0, err
	}
	if len(lo.Topics[q.topic]) != 1 {
		return 0, 0, fmt.Errorf("no offsets of %s", q.topic)
	}
	p := lo.Topics[q.topic][0]
	if p.Error != nil {
		return 0, 0, p.Error
	}
	of, err := q.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: q.topic, Topics: map[string][]int{q.topic: {0}}})
	if err != nil {
		return 0, 0, err
	}
	committed := int64(-1)
	if ps := of.Topics[q.topic]; len(ps) == 1 && ps[0].Error == nil {
		committed = ps[0].CommittedOffset
	}
	return max(committed, p.FirstOffset), p.LastOffset, nil
}

// read returns the records from offset from up to end, at most n (0:
// all), as dead letters, and how many do not parse.
func (q *kafkaDLQ) read(ctx context.Context, from, end int64, n int) ([]DeadLetter, int, error) {
	if from >= end {
		return nil, 0, nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: q.brokers, Topic: q.topic, Partition: 0, Dialer: q.dialer, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return nil, 0, err
	}
	var records []DeadLetter
	bad := 0
	seen := map[string]bool{}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("dead-letter topic %s: reading offset %d: %w", q.topic, from, err)
		}
		var dl DeadLetter
		switch {
		case json.Unmarshal(m.Value, &dl) != nil:
			bad++
		case !seen[dl.key()]:
			seen[dl.key()] = true
			dl.ref = uint64(m.Offset)
			records = append(records, dl)
		case len(records) > 0:
			// A repeat of a delivery listed before: removing the record
			// before it removes it too.
			records[len(records)-1].ref = uint64(m.Offset)
		}
		if m.Offset >= end-1 || (n > 0 && len(records) >= n) {
			return records, bad, nil
		}
	}
}

func (q *kafkaDLQ) stats() (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	from, end, err := q.offsets(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if from != q.cache.from || end != q.cache.end {
		first, _, err := q.read(ctx, from, end, 1)
		if err != nil {
			return 0, time.Time{}, err
		}
		q.cache.from, q.cache.end, q.cache.oldest = from, end, time.Time{}
		if len(first) > 0 {
			q.cache.oldest = first[0].Time
		}
	}
	// Repeats of a delivery are counted here, not listed.
	return int(end - from), q.cache.oldest, nil
}

func (q *kafkaDLQ) list(ctx context.Context) ([]DeadLetter, int, error) {
	from, end, err := q.offsets(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("dead-letter topic %s: %w", q.topic, err)
	}
	return q.read(ctx, from, end, 0)
}

func (q *kafkaDLQ) remove(ctx context.Context, dls []DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	next := int64(dls[len(dls)-1].ref) + 1 // in order: everything before it was confirmed too
	res, err := q.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID: q.topic, GenerationID: -1,
		Topics: map[string][]kafkago.OffsetCommit{q.topic: {{Partition: 0, Offset: next}}},
	})
	if err == nil {
		for _, p := range res.Topics[q.topic] {
			err = errors.Join(err, p.Error)
		}
	}
	if err != nil {
		return fmt.Errorf("dead-letter topic %s: committing offset %d: %w", q.topic, next, err)
	}
	return nil
}

func (q *kafkaDLQ) tidy(context.Context) error { return nil }
