package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	kafkacarrier "github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/bridge"
)

// kfakeClusterID is the cluster ID kfake, franz-go's in-process test
// broker, answers with unless told otherwise.
const kfakeClusterID = "kfake"

// kfakeNote goes with every figure measured on kfake.
const kfakeNote = "kfake is a test broker (no replication, persistence or throttling): its figures say nothing about Kafka's speed, only how the protocol compares with raw kafka-go on the same broker"

// kafkaTarget is Kafka at BRIDGE_KAFKA_BROKERS. A broker that says it is
// kfake is labelled a test broker in every output, whatever
// BRIDGE_BENCH_KAFKA_LABEL says.
func kafkaTarget(ctx context.Context, cfg bridge.Config, b Config, log *slog.Logger) (*target, error) {
	kcfg, err := cfg.KafkaConfig(log) // the carrier's brokers, TLS and SASL, for the raw clients
	if err != nil {
		return nil, err
	}
	tlsCfg := kcfg.TLS
	mechanism, err := kcfg.SASLMechanism()
	if err != nil {
		return nil, err
	}
	transport := &kafkago.Transport{TLS: tlsCfg, SASL: mechanism, ClientID: "bridge-bench"}
	admin := &kafkago.Client{Addr: kafkago.TCP(kcfg.Brokers...), Transport: transport, Timeout: 10 * time.Second}
	md, err := admin.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("BRIDGE_KAFKA_BROKERS=%s: %w", strings.Join(kcfg.Brokers, ","), err)
	}
	t := &target{
		name:   "kafka",
		broker: kafkaBrokerLabel(b.KafkaLabel, md.ClusterID),
		client: "kafka-go: a Writer with RequireAll acks, asynchronous, batches flushed after 1 ms, 8 MiB in flight; a Reader on the partition (it commits nothing)",
		cfg:    cfg,
	}
	if md.ClusterID == kfakeClusterID {
		t.note = kfakeNote
	}
	t.onClose(transport.CloseIdleConnections)
	if err := t.openCarrier(ctx, log); err != nil {
		t.close()
		return nil, err
	}
	prefix := strings.TrimSuffix(cfg.KafkaTopicPrefix, ".") + "."
	dialer := &kafkago.Dialer{TLS: tlsCfg, SASLMechanism: mechanism, Timeout: 10 * time.Second, DualStack: true}
	t.competing = kafkaGroup(admin, transport, dialer, kcfg.Brokers, prefix, cfg.WorkerTimeout, log)
	t.raw = func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error) {
		return rawKafkaPipe(ctx, admin, transport, dialer, kcfg.Brokers, prefix+stream+".raw", size, log, deliver)
	}
	return t, nil
}

// kafkaBrokerLabel says what the Kafka is: the label given, else its
// cluster ID; kfake always as a test broker.
func kafkaBrokerLabel(label, clusterID string) string {
	switch {
	case clusterID == kfakeClusterID && !strings.Contains(strings.ToLower(label), "test broker"):
		if label == "" {
			label = "kfake"
		}
		return label + " (test broker)"
	case label != "":
		return label
	}
	return "Kafka cluster " + clusterID
}

func deleteTopics(ctx context.Context, admin *kafkago.Client, topics ...string) error {
	resp, err := admin.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return err
	}
	var errs []error
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafkago.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// rawKafkaPipe streams messages through a topic of its own (one
// partition) with kafka-go alone, as a careful application would use it:
// a Writer with acks from all replicas, batches bounded by the carrier's
// byte limit and flushed after 1 ms (the Writer cannot flush sooner; the
// carrier does not wait), asynchronous writes with the carrier's 8 MiB in
// flight; a Reader on the partition fetching ahead as the carrier's does.
// It commits nothing, which only flatters it. The topic is deleted on
// close.
func rawKafkaPipe(ctx context.Context, admin *kafkago.Client, transport *kafkago.Transport, dialer *kafkago.Dialer, brokers []string, topic string, size int, log *slog.Logger, deliver deliverFunc) (*pipe, error) {
	resp, err := admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: -1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return nil, fmt.Errorf("raw kafka: creating topic %s: %w", topic, err)
	}
	p := &pipe{failed: make(chan error, 1)}
	inFlight := newByteBudget(kafkacarrier.DefaultSendBufferBytes)
	writer := &kafkago.Writer{
		Addr:         kafkago.TCP(brokers...),
		Topic:        topic,
		RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond,
		// Bounded by bytes, as the carrier's batches are (kafka-go allocates
		// BatchSize messages per batch, so it cannot just be huge).
		BatchSize:  max(1, kafkacarrier.DefaultMaxMessageBytes/(size+64)),
		BatchBytes: kafkacarrier.DefaultMaxMessageBytes,
		Async:      true,
		Transport:  transport,
		Completion: func(msgs []kafkago.Message, err error) {
			if err != nil {
				p.fail(fmt.Errorf("raw kafka write: %w", err))
			}
			for _, m := range msgs {
				inFlight.release(len(m.Value))
			}
		},
	}
	reader := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:         brokers,
		Topic:           topic,
		Dialer:          dialer,
		MinBytes:        1,
		MaxBytes:        kafkacarrier.FetchBatches * kafkacarrier.DefaultMaxMessageBytes,
		MaxWait:         kafkacarrier.DefaultFetchMaxWait,
		QueueCapacity:   16,
		ReadLagInterval: -1,
		ReadBackoffMin:  kafkacarrier.ReaderRedialBackoff, // as the carrier: kafka-go's 100 ms would set raw's tail
	})
	recvCtx, stop := context.WithCancel(context.Background())
	received := make(chan struct{})
	go func() {
		defer close(received)
		for {
			m, err := reader.FetchMessage(recvCtx)
			if err != nil {
				if recvCtx.Err() == nil {
					p.fail(fmt.Errorf("raw kafka read: %w", err))
				}
				return
			}
			deliver(m.Value, time.Now())
		}
	}()
	p.send = func(ctx context.Context, msg []byte) error {
		if err := inFlight.acquire(ctx, len(msg)); err != nil {
			return err
		}
		return writer.WriteMessages(ctx, kafkago.Message{Value: msg})
	}
	p.flush = func(ctx context.Context) error { return inFlight.drained(ctx) }
	p.close = func() {
		writer.Close()
		stop()
		<-received
		reader.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := deleteTopics(ctx, admin, topic); err != nil {
			log.Warn("raw kafka: deleting the bench's topic", "err", err)
		}
	}
	return p, nil
}

// byteBudget bounds the bytes in flight, as the carrier's send buffer
// does. One goroutine acquires; any may release.
type byteBudget struct {
	mu          sync.Mutex
	free, total int
	freed       chan struct{} // a release happened
}

func newByteBudget(n int) *byteBudget {
	return &byteBudget{free: n, total: n, freed: make(chan struct{}, 1)}
}

// acquire waits until n bytes are free (or nothing is in flight: a message
// larger than the budget still goes, alone).
func (b *byteBudget) acquire(ctx context.Context, n int) error {
	return b.waitFor(ctx, func() bool {
		if b.free >= n || b.free == b.total {
			b.free -= n
			return true
		}
		return false
	})
}

// drained waits until nothing is in flight.
func (b *byteBudget) drained(ctx context.Context) error {
	return b.waitFor(ctx, func() bool { return b.free == b.total })
}

func (b *byteBudget) waitFor(ctx context.Context, ready func() bool) error {
	for {
		b.mu.Lock()
		ok := ready()
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-b.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	select {
	case b.freed <- struct{}{}:
	default:
	}
}
