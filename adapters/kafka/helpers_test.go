package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
	kafkago "github.com/segmentio/kafka-go"
)

var streamSeq atomic.Uint64

// uniqueStream names a stream unique to this test run, also on a broker that
// keeps topics across runs.
func uniqueStream(t testing.TB) string {
	return fmt.Sprintf("kafkatest-%d-%d", time.Now().UnixNano()%1e9, streamSeq.Add(1))
}

// newStream names a stream unique to this test run and deletes its topics
// and group through c when the test ends, after the links opened since are
// closed: the test Kafka is shared and keeps them.
func newStream(t testing.TB, c *kafka.Carrier) string {
	stream := uniqueStream(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DeleteStream(ctx, stream); err != nil {
			t.Errorf("delete stream %s: %v", stream, err)
		}
	})
	return stream
}

// testKafka returns a carrier on the test Kafka (adaptertest.KafkaOrKfake:
// Apache Kafka under `make test`, kfake in a plain `go test` with none
// running), its brokers, and what it is, for test names.
func testKafka(t testing.TB, cfg kafka.Config) (*kafka.Carrier, []string, string) {
	t.Helper()
	brokers, real := adaptertest.KafkaOrKfake(t)
	name := "kafka on kfake"
	if real {
		name = "kafka at " + strings.Join(brokers, ",")
	}
	cfg.Brokers = brokers
	return newCarrier(t, cfg), brokers, name
}

// testContext is cancelled at the end of the test, or after d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// openLink opens one end of stream and closes it at cleanup.
func openLink(t testing.TB, c *kafka.Carrier, stream string, end delivery.End) *kafka.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.Link(ctx, stream, end)
	if err != nil {
		t.Fatalf("open the %v end of %s: %v", end, stream, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitFor polls cond until it holds, failing the test after d. For
// conditions no event announces (a link's view of its connections).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// committedOffset asks the broker directly, with kafka-go, for group's
// committed offset in partition 0 of topic (-1: none).
func committedOffset(t testing.TB, broker, group, topic string) int64 {
	t.Helper()
	transport := &kafkago.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(broker), Transport: transport, Timeout: 10 * time.Second}
	res, err := client.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == 0 && p.Error == nil {
			return p.CommittedOffset
		}
	}
	return -1
}
