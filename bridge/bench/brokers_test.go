package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench"

	natsgo "github.com/nats-io/nats.go"
)

type benchRow struct {
	Transport string   `json:"transport"`
	Broker    string   `json:"broker"`
	Mode      string   `json:"mode"`
	Size      int      `json:"size"`
	Messages  int      `json:"messages"`
	Lost      int      `json:"lost"`
	Rate      float64  `json:"msgs_per_sec"`
	P50       float64  `json:"p50_ms"`
	P99       float64  `json:"p99_ms"`
	Resends   *uint64  `json:"resends"`
	Ratio     *float64 `json:"ratio"`
	Note      string   `json:"note"`
}

// TestBenchOverBrokers runs the bench's raw clients and the protocol over
// JetStream, RabbitMQ and Kafka (kfake), with the durable queue too, and
// checks that every mode moved every message, that kfake is labelled a
// test broker, and that the bench removed the streams and topics it made.
func TestBenchOverBrokers(t *testing.T) {
	amqpURL := adaptertest.RabbitMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	nats, err := natscarrier.StartServer(ctx, natscarrier.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer nats.Shutdown()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()

	var b bench.Config
	cfg, err := bridge.LoadConfig(&b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATSURL, cfg.AMQPURL, cfg.KafkaBrokers = nats.URL(), amqpURL, kafka.ListenAddrs()
	// A prefix of this run's own, to tell its queues from others' on the
	// shared broker.
	cfg.AMQPQueuePrefix = fmt.Sprintf("bench-test-%d", time.Now().UnixNano())
	const count = 600
	b.Transports = []string{"jetstream", "amqp", "kafka"}
	b.Count, b.Size, b.Durable, b.Format = count, []int{128, 64 << 10}, true, "json"
	if err := b.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := bridge.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := bench.Run(ctx, cfg, b, env); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rows []benchRow
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if len(rows) != 3*2*3 {
		t.Fatalf("%d rows, want 18 (3 transports, 2 sizes, 3 modes):\n%s", len(rows), stdout.String())
	}
	modes := map[string]int{}
	for _, r := range rows {
		modes[r.Mode]++
		name := r.Transport + " " + r.Mode
		if r.Messages != count || r.Lost != 0 || r.Rate <= 0 || r.P50 <= 0 || r.P50 > r.P99 {
			t.Errorf("%s %d B: %d messages, %d lost, %v msgs/s, p50 %v ms, p99 %v ms", name, r.Size, r.Messages, r.Lost, r.Rate, r.P50, r.P99)
		}
		if (r.Mode == "raw") != (r.Ratio == nil) || (r.Mode == "raw") != (r.Resends == nil) {
			t.Errorf("%s: ratio %v, resends %v: want them on the reliable and durable rows only", name, r.Ratio, r.Resends)
		}
		testBroker := strings.Contains(r.Broker, "test broker") && strings.Contains(r.Note, "test broker")
		if (r.Transport == "kafka") != testBroker {
			t.Errorf("%s on %q, note %q: kfake, and only kfake, must be labelled a test broker", name, r.Broker, r.Note)
		}
	}
	if modes["raw"] != 6 || modes["reliable"] != 6 || modes["durable"] != 6 {
		t.Errorf("modes %v, want 6 rows of raw, reliable and durable each", modes)
	}
	checkNoBenchStreams(t, ctx, nats.URL())
	checkNoBenchTopics(t, ctx, kafka.ListenAddrs())
	checkNoQueues(t, ctx, cfg.AMQPQueuePrefix+".")
}

// checkNoQueues fails t if a queue whose name starts with prefix is left
// on RabbitMQ. AMQP cannot list queues: rabbitmqctl does.
func checkNoQueues(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		adaptertest.BrokerUnavailable(t, "no rabbitmqctl to list RabbitMQ's queues: %v", err)
		return
	}
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_queues", "name").Output()
	if err != nil {
		t.Fatalf("rabbitmqctl list_queues: %v", err)
	}
	for _, q := range strings.Fields(string(out)) {
		if strings.HasPrefix(q, prefix) {
			t.Errorf("queue left behind: %s", q)
		}
	}
}

// checkNoBenchStreams fails t if a JetStream stream the bench made is left.
func checkNoBenchStreams(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(ctx)
	var left []string
	for name := range names.Name() {
		left = append(left, name)
	}
	if names.Err() != nil {
		t.Fatal(names.Err())
	}
	if len(left) > 0 {
		t.Errorf("JetStream streams left behind: %v", left)
	}
}

// checkNoBenchTopics fails t if a topic the bench made is left on Kafka.
func checkNoBenchTopics(t *testing.T, ctx context.Context, brokers []string) {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range md.Topics {
		if strings.Contains(topic.Name, "bench-") {
			t.Errorf("topic left behind: %s", topic.Name)
		}
	}
}
