package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
)

// testNATSURL is the machine's NATS with JetStream (BRIDGE_TEST_NATS_URL).
func testNATSURL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("BRIDGE_TEST_NATS_URL")
	if raw == "" {
		adaptertest.BrokerUnavailable(t, "BRIDGE_TEST_NATS_URL is not set; set it to the machine's NATS with JetStream, e.g. nats://127.0.0.1:4222")
	}
	if u, err := url.Parse(raw); err != nil || u.Scheme != "nats" {
		t.Fatalf("BRIDGE_TEST_NATS_URL=%q is not a nats:// URL", raw)
	}
	nc, err := natsgo.Connect(raw, natsgo.Timeout(3*time.Second))
	if err != nil {
		adaptertest.BrokerUnavailable(t, "NATS at %s: %v", raw, err)
	}
	nc.Close()
	return raw
}

// dlqKinds are the configurations of each kind of dead-letter queue, on
// the real brokers, each with a stream of its own that the test's end
// deletes.
func dlqKinds() []struct {
	name string
	cfg  func(t *testing.T) Config
} {
	stream := func(t *testing.T) string { return fmt.Sprintf("dlqtest-%d", time.Now().UnixNano()) }
	return []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"file", func(t *testing.T) Config {
			return Config{Stream: stream(t), DLQ: "file://" + t.TempDir()}
		}},
		{"nats", func(t *testing.T) Config {
			cfg := Config{Stream: stream(t), Transport: "nats", NATSURL: testNATSURL(t), NATSPrefix: "bridge", DLQ: "carrier"}
			t.Cleanup(func() {
				nc, err := natsgo.Connect(cfg.NATSURL)
				if err != nil {
					return
				}
				defer nc.Close()
				js, _ := jetstream.New(nc)
				js.DeleteStream(context.Background(), jetStreamDLQName("bridge", cfg.Stream+".dlq"))
			})
			return cfg
		}},
		{"amqp", func(t *testing.T) Config {
			cfg := Config{Stream: stream(t), Transport: "amqp", AMQPURL: adaptertest.RabbitMQ(t), AMQPQueuePrefix: "bridge", DLQ: "carrier:" + stream(t) + ".dead"}
			name, _ := cfg.dlqCarrierName()
			t.Cleanup(func() { adaptertest.DeleteQueues(cfg.AMQPURL, "bridge."+name) })
			return cfg
		}},
		{"kafka", func(t *testing.T) Config {
			cfg := Config{Stream: stream(t), Transport: "kafka", KafkaBrokers: adaptertest.Kafka(t), KafkaTopicPrefix: "bridge", DLQ: "carrier"}
			t.Cleanup(func() {
				tr := &kafkago.Transport{}
				defer tr.CloseIdleConnections()
				c := &kafkago.Client{Addr: kafkago.TCP(cfg.KafkaBrokers...), Transport: tr, Timeout: 30 * time.Second}
				c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{"bridge." + cfg.Stream + ".dlq"}})
				c.DeleteGroups(context.Background(), &kafkago.DeleteGroupsRequest{GroupIDs: []string{"bridge." + cfg.Stream + ".dlq"}})
			})
			return cfg
		}},
	}
}

// TestDeadLetterQueues: each kind of dead-letter queue keeps what it
// recorded across a reopening (another process), lists it oldest first,
// each delivery once though it was recorded twice (a consumer killed
// before it confirmed), counts it and knows the oldest's age, and forgets
// what was removed, for good.
func TestDeadLetterQueues(t *testing.T) {
	for _, kind := range dlqKinds() {
		t.Run(kind.name, func(t *testing.T) {
			cfg := kind.cfg(t)
			var c checker
			cfg.checkDLQ(&c)
			if err := c.err(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			open := func() deadLetterQueue {
				t.Helper()
				q, err := openDLQ(ctx, &cfg, log)
				if err != nil {
					t.Fatal(err)
				}
				return q
			}
			at := time.Now().UTC().Add(-3 * time.Second)
			first := newDeadLetter(cfg.Stream, testDelivery(7, "poison"), ReasonRefused, 1, 422, errors.New("422"))
			first.Time = at
			second := newDeadLetter(cfg.Stream, testDelivery(9, "\xffbinary"), ReasonAttempts, 10, 503, errors.New("503"))

			q := open()
			if err := q.record(ctx, []DeadLetter{first}); err != nil {
				t.Fatal(err)
			}
			q.Close()
			q = open() // the consumer started again, and given the message again
			if err := q.record(ctx, []DeadLetter{first, second}); err != nil {
				t.Fatal(err)
			}
			waiting, oldest, err := q.stats()
			if err != nil || waiting < 2 || waiting > 3 || oldest.Sub(at).Abs() > 2*time.Second {
				t.Errorf("stats: %d waiting, the oldest from %v (recorded at %v), %v", waiting, oldest, at, err)
			}
			q.Close()

			q = open()
			records, bad, err := q.list(ctx)
			if err != nil || bad != 0 || len(records) != 2 {
				t.Fatalf("list: %d records, %d bad, %v", len(records), bad, err)
			}
			if string(records[0].Body()) != "poison" || records[0].Metadata.SeqNr != 7 || records[0].Reason != ReasonRefused || records[0].Status != 422 ||
				string(records[1].Body()) != "\xffbinary" || records[1].Attempts != 10 || records[1].Metadata.ProducerID != "p1" || records[1].Metadata.Epoch != 7 {
				t.Errorf("list: %+v", records)
			}
			if err := q.remove(ctx, records[:1]); err != nil {
				t.Fatal(err)
			}
			if err := q.tidy(ctx); err != nil {
				t.Fatal(err)
			}
			q.Close()

			q = open()
			records, _, err = q.list(ctx)
			if err != nil || len(records) != 1 || records[0].Metadata.SeqNr != 9 {
				t.Fatalf("after removing the first: %+v, %v", records, err)
			}
			if err := q.remove(ctx, records); err != nil {
				t.Fatal(err)
			}
			q.tidy(ctx)
			q.Close()

			q = open()
			defer q.Close()
			if records, _, err = q.list(ctx); err != nil || len(records) != 0 {
				t.Errorf("after removing both: %+v, %v", records, err)
			}
			if waiting, oldest, err := q.stats(); err != nil || waiting != 0 || !oldest.IsZero() {
				t.Errorf("stats when empty: %d, %v, %v", waiting, oldest, err)
			}
		})
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// TestAMQPDLQDeleted: a dead-letter queue deleted under a consumer does
// not swallow what it is given: the broker confirms an unroutable message,
// and record fails rather than count it recorded.
func TestAMQPDLQDeleted(t *testing.T) {
	cfg := Config{Stream: fmt.Sprintf("dlqtest-%d", time.Now().UnixNano()), Transport: "amqp", AMQPURL: adaptertest.RabbitMQ(t), AMQPQueuePrefix: "bridge", DLQ: "carrier"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := openDLQ(ctx, &cfg, slog.New(slog.NewTextHandler(testLog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	adaptertest.DeleteQueues(cfg.AMQPURL, "bridge."+cfg.Stream+".dlq")
	err = q.record(ctx, []DeadLetter{newDeadLetter(cfg.Stream, testDelivery(1, "m"), ReasonRefused, 1, 400, nil)})
	if err == nil {
		t.Fatal("a dead letter to a deleted queue counted as recorded")
	}
	t.Log(err)
}
