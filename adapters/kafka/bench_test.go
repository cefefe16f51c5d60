package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
	kafkago "github.com/segmentio/kafka-go"
)

// The benchmarks stream b.N messages end to end on one in-process kfake
// broker and report, from the same run, the rate of reliable delivery over
// the carrier (msgs/s), the rate of raw kafka-go on the same broker with no
// protocol (raw-msgs/s), and their ratio. ns/op is the reliable path's.
//
// kfake is a test broker: it does not replicate, persist or throttle, so the
// figures say nothing about Kafka's speed, only how the carrier compares
// with kafka-go used directly on the same broker.
//
// Raw kafka-go is used as a careful application would use it alone: a Writer
// with acks from all replicas, batches bounded by the same byte limit as the
// carrier's and flushed after 1 ms (kafka-go's Writer cannot flush sooner;
// the carrier's default is not to wait), asynchronous writes with the same
// 8 MiB of messages in flight; a Reader on the partition, fetching ahead as
// the carrier's does. It commits nothing, which only flatters it.
//
// The two alternate in rounds on the same broker, so that a machine whose
// load changes during the run weighs on both alike.

func BenchmarkKafka128B(b *testing.B) { benchKafka(b, 128) }

func BenchmarkKafka64KiB(b *testing.B) { benchKafka(b, 64<<10) }

const benchRounds = 4

func benchKafka(b *testing.B, size int) {
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.StopTimer()
	broker := startBroker(b)
	raw := newRawPipe(b, broker.addr(), payload)
	c := newCarrier(b, kafka.Config{Brokers: []string{broker.addr()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	stream := uniqueStream(b)
	reliable := adaptertest.NewBenchStream(b, openLink(b, c, stream, delivery.ProducerEnd), openLink(b, c, stream, delivery.ConsumerEnd),
		delivery.ProducerSettings{}, delivery.ConsumerSettings{})
	defer reliable.Close()
	var rawTime, reliableTime float64 // seconds
	for round := range benchRounds {
		n := b.N / benchRounds
		if round == benchRounds-1 {
			n = b.N - n*(benchRounds-1)
		}
		if n == 0 {
			continue
		}
		rawTime += raw.stream(n).Seconds()
		b.StartTimer()
		reliableTime += float64(n) / reliable.Rate(n, payload)
		b.StopTimer()
	}
	adaptertest.ReportRates(b, float64(b.N)/reliableTime, float64(b.N)/rawTime)
}

// rawPipe is a kafka-go Writer and Reader on a topic of their own.
type rawPipe struct {
	b        *testing.B
	payload  []byte
	writer   *kafkago.Writer
	reader   *kafkago.Reader
	inFlight *byteBudget
}

func newRawPipe(b *testing.B, broker string, payload []byte) *rawPipe {
	ctx := context.Background()
	topic := "raw-" + uniqueStream(b)
	transport := &kafkago.Transport{}
	b.Cleanup(transport.CloseIdleConnections)
	client := &kafkago.Client{Addr: kafkago.TCP(broker), Transport: transport, Timeout: 10 * time.Second}
	if _, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: -1}}}); err != nil {
		b.Fatal(err)
	}
	p := &rawPipe{b: b, payload: payload, inFlight: newByteBudget(kafka.DefaultSendBufferBytes)}
	var failed sync.Once
	p.writer = &kafkago.Writer{
		Addr:         kafkago.TCP(broker),
		Topic:        topic,
		RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond,
		// Bounded by bytes, as the carrier's batches are (kafka-go allocates
		// BatchSize messages per batch, so it cannot just be huge).
		BatchSize:  max(1, kafka.DefaultMaxMessageBytes/(len(payload)+64)),
		BatchBytes: kafka.DefaultMaxMessageBytes,
		Async:      true,
		Transport:  transport,
		Completion: func(msgs []kafkago.Message, err error) {
			if err != nil {
				failed.Do(func() { b.Errorf("raw write: %v", err) })
			}
			for _, m := range msgs {
				p.inFlight.release(len(m.Value))
			}
		},
	}
	b.Cleanup(func() { p.writer.Close() })
	p.reader = kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:         []string{broker},
		Topic:           topic,
		MinBytes:        1,
		MaxBytes:        2 * kafka.DefaultMaxMessageBytes,
		MaxWait:         kafka.DefaultFetchMaxWait,
		QueueCapacity:   16,
		ReadLagInterval: -1,
	})
	b.Cleanup(func() { p.reader.Close() })
	return p
}

// stream writes n messages, reads them, and returns how long that took.
func (p *rawPipe) stream(n int) time.Duration {
	ctx := context.Background()
	start := time.Now()
	go func() {
		for range n {
			p.inFlight.acquire(len(p.payload))
			if err := p.writer.WriteMessages(ctx, kafkago.Message{Value: p.payload}); err != nil {
				p.b.Error(err)
				return
			}
		}
	}()
	for range n {
		if _, err := p.reader.FetchMessage(ctx); err != nil {
			p.b.Fatal(err)
		}
	}
	return time.Since(start)
}

// byteBudget bounds the bytes in flight, as the carrier's send buffer does.
type byteBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	free  int
	total int
}

func newByteBudget(n int) *byteBudget {
	bb := &byteBudget{free: n, total: n}
	bb.cond = sync.NewCond(&bb.mu)
	return bb
}

func (bb *byteBudget) acquire(n int) {
	bb.mu.Lock()
	for bb.free < n && bb.free < bb.total {
		bb.cond.Wait()
	}
	bb.free -= n
	bb.mu.Unlock()
}

func (bb *byteBudget) release(n int) {
	bb.mu.Lock()
	bb.free += n
	bb.cond.Broadcast()
	bb.mu.Unlock()
}
