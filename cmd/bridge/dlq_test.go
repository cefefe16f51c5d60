package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// hook is a webhook for the tests of the binary: it keeps the messages
// it accepts, per consumer run, and answers status for those refuse names.
type hook struct {
	mu     sync.Mutex
	run    int
	got    [][]string // per run
	refuse func(msg string) int
}

func newHook(t *testing.T, refuse func(string) int) (*hook, string) {
	h := &hook{got: [][]string{nil}, refuse: refuse}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	msgs := []string{string(body)}
	if r.Header.Get("Content-Type") == "application/x-ndjson" {
		msgs = strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		if s := h.refuse(m); s != 0 {
			w.WriteHeader(s)
			return
		}
	}
	h.got[h.run] = append(h.got[h.run], msgs...)
	w.WriteHeader(http.StatusNoContent)
}

// nextRun starts counting what arrives as the next consumer run's.
func (h *hook) nextRun() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.run++
	h.got = append(h.got, nil)
}

// distinct counts the messages accepted, each once.
func (h *hook) distinct() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, run := range h.got {
		for _, m := range run {
			seen[m] = true
		}
	}
	return seen
}

// dlqRecords reads the messages in a file:// dead-letter queue's records,
// skipping a last line cut short.
func dlqRecords(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var msgs []string
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		var dl struct{ Message string }
		if json.Unmarshal(line, &dl) == nil {
			msgs = append(msgs, dl.Message)
		}
	}
	return msgs
}

// waitUntil polls cond, for what a process does not signal (a file's
// content, a webhook's count).
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dlqKinds give the variables of a stream and its dead-letter queue: a
// file over tcp, and the dead-letter stream on the broker over NATS
// JetStream (the machine's server, which outlives the processes), RabbitMQ
// and Kafka. What a stream leaves on a broker is deleted when the test
// ends.
var dlqKinds = []struct {
	name string
	n    int // messages of TestDeadLetteringSurvivesSIGKILL: fewer through a broker, slower
	vars func(t *testing.T) []string
}{
	{"file", 10_000, func(t *testing.T) []string {
		return []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + adaptertest.FreeAddr(t), "BRIDGE_DLQ=file://" + t.TempDir()}
	}},
	{"nats-jetstream", 3000, func(t *testing.T) []string {
		url := os.Getenv("BRIDGE_TEST_NATS_URL")
		if url == "" {
			adaptertest.BrokerUnavailable(t, "BRIDGE_TEST_NATS_URL is not set")
		}
		cfg := bridge.Config{Transport: "nats", NATSURL: url, NATSJetStream: true, NATSPrefix: "bridge", Stream: uniqueStream("dlqkill")}
		t.Cleanup(func() { deleteBridgeStream(t, cfg, "bridge_"+cfg.Stream+"_dlq") })
		return []string{"BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_URL=" + url, "BRIDGE_NATS_JETSTREAM=true", "BRIDGE_STREAM=" + cfg.Stream, "BRIDGE_DLQ=carrier"}
	}},
	{"amqp", 3000, func(t *testing.T) []string {
		url := adaptertest.RabbitMQ(t)
		stream := uniqueStream("dlqkill")
		t.Cleanup(func() {
			adaptertest.DeleteQueues(url, "bridge."+stream+".data", "bridge."+stream+".control", "bridge."+stream+".dlq")
		})
		return []string{"BRIDGE_TRANSPORT=amqp", "BRIDGE_AMQP_URL=" + url, "BRIDGE_STREAM=" + stream, "BRIDGE_DLQ=carrier"}
	}},
	{"kafka", 3000, func(t *testing.T) []string {
		brokers := adaptertest.Kafka(t)
		stream := uniqueStream("dlqkill")
		t.Cleanup(func() {
			deleteKafkaStream(t, brokers, stream)
			tr := &kafkago.Transport{}
			defer tr.CloseIdleConnections()
			c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: tr, Timeout: 30 * time.Second}
			c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{"bridge." + stream + ".dlq"}})
			c.DeleteGroups(context.Background(), &kafkago.DeleteGroupsRequest{GroupIDs: []string{"bridge." + stream + ".dlq"}})
		})
		return []string{"BRIDGE_TRANSPORT=kafka", "BRIDGE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "BRIDGE_STREAM=" + stream, "BRIDGE_DLQ=carrier"}
	}},
}

func uniqueStream(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// deleteBridgeStream deletes what a stream left on NATS: its JetStream
// streams, and the others named.
func deleteBridgeStream(t *testing.T, cfg bridge.Config, others ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	car, err := bridge.OpenCarrier(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer car.Close()
	if err := car.DeleteStream(ctx, cfg.Stream); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	nc, err := natsgo.Connect(cfg.NATSURL)
	if err != nil {
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, name := range others {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Errorf("cleanup: JetStream stream %s: %v", name, err)
		}
	}
}

// listed runs `bridge dlq list` and returns the messages it lists.
func listed(t *testing.T, vars []string) []string {
	t.Helper()
	code, stdout, stderr := output(t, []string{"dlq", "list"}, vars...)
	if code != 0 {
		t.Fatalf("bridge dlq list: exit %d\n%s", code, stderr)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var dl struct{ Message string }
		if json.Unmarshal([]byte(line), &dl) == nil {
			msgs = append(msgs, dl.Message)
		}
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d dead letters", len(msgs))) {
		t.Errorf("bridge dlq list printed %d, and said %s", len(msgs), stderr)
	}
	return msgs
}

// TestDeadLetteringSurvivesSIGKILL: a consumer process dead-lettering
// every tenth of 10,000 messages (3,000 through a broker; its webhook
// answers 422) is killed with SIGKILL mid-stream and started again, with
// each kind of dead-letter queue: every message is at the webhook or in the queue, `bridge dlq
// list` shows each dead letter once (the file holds each once), and each
// run's messages reached the webhook in order.
func TestDeadLetteringSurvivesSIGKILL(t *testing.T) {
	refused := func(m string) bool { v, _ := strconv.Atoi(m); return v%10 == 0 }
	for _, kind := range dlqKinds {
		t.Run(kind.name, func(t *testing.T) {
			n := kind.n
			h, url := newHook(t, func(m string) int {
				if refused(m) {
					return http.StatusUnprocessableEntity
				}
				return 0
			})
			var deadCount func() int
			vars := append(kind.vars(t), "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_WINDOW=200")
			for _, v := range vars {
				if dir, ok := strings.CutPrefix(v, "BRIDGE_DLQ=file://"); ok {
					deadCount = func() int { return len(dlqRecords(t, filepath.Join(dir, "bridge.dlq.jsonl"))) }
				}
			}
			consumerVars := append(vars, "BRIDGE_ROLE=consumer", "BRIDGE_SINK=http", "BRIDGE_SINK_URL="+url, "BRIDGE_SINK_RETRY_MAX=100ms")
			var producerVars []string // a producer has no dead-letter queue
			for _, v := range vars {
				if !strings.HasPrefix(v, "BRIDGE_DLQ=") {
					producerVars = append(producerVars, v)
				}
			}
			producer := startProc(t, strings.NewReader(numbered(n)), nil, append(producerVars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=stdin")...)
			consumer := startProc(t, nil, nil, consumerVars...)
			if deadCount != nil {
				waitUntil(t, "a third of the dead letters", time.Minute, func() bool { return deadCount() >= n/30 })
			} else { // a third through the stream, dead-lettering all along
				waitUntil(t, "a third of the messages", time.Minute, func() bool { return len(h.distinct()) >= n*3/10 })
			}
			kill(consumer) // SIGKILL, as it dead-letters
			h.nextRun()
			consumer = startProc(t, nil, nil, consumerVars...)
			producer.wait(t, "producer", 2*time.Minute) // it exits once all are confirmed
			consumer.terminate(t, "consumer")

			dead := map[string]bool{}
			for _, m := range listed(t, vars) {
				if dead[m] {
					t.Errorf("message %s listed twice", m)
				}
				if !refused(m) {
					t.Errorf("message %s dead-lettered, though the webhook takes it", m)
				}
				dead[m] = true
			}
			if deadCount != nil && deadCount() != len(dead) {
				t.Errorf("the file holds %d records of %d dead letters", deadCount(), len(dead))
			}
			got := h.distinct()
			for i := 1; i <= n; i++ {
				m := strconv.Itoa(i)
				if !got[m] && !dead[m] {
					t.Fatalf("message %d lost: neither at the webhook nor in the dead-letter queue", i)
				}
			}
			if len(dead) != n/10 {
				t.Errorf("%d dead letters, want %d", len(dead), n/10)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			for run, msgs := range h.got {
				var nums []int
				for _, m := range msgs {
					v, _ := strconv.Atoi(m)
					nums = append(nums, v)
				}
				for i := 1; i < len(nums); i++ {
					if nums[i] <= nums[i-1] {
						t.Errorf("run %d: %d after %d", run, nums[i], nums[i-1])
						break
					}
				}
				if len(nums) > 0 {
					t.Logf("run %d: %d messages, %d to %d", run, len(nums), nums[0], nums[len(nums)-1])
				}
			}
		})
	}
}

// TestNDJSONDurableSurvivesSIGKILL: with BRIDGE_DURABLE_DIR, the 202 of
// an NDJSON batch means all its lines survive a crash. The webhook takes
// nothing while a producer answers 202 to 5 batches of 100; the producer
// is killed with SIGKILL and started again on its directory; once the
// webhook takes messages, all 500 arrive.
func TestNDJSONDurableSurvivesSIGKILL(t *testing.T) {
	var mu sync.Mutex
	open := false
	h, url := newHook(t, func(string) int {
		mu.Lock()
		defer mu.Unlock()
		if !open {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	httpAddr := adaptertest.FreeAddr(t)
	vars := []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + adaptertest.FreeAddr(t), "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s"}
	producerVars := append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR="+httpAddr, "BRIDGE_DURABLE_DIR="+t.TempDir())
	consumer := startProc(t, nil, nil, append(vars, "BRIDGE_ROLE=consumer", "BRIDGE_SINK=http", "BRIDGE_SINK_URL="+url, "BRIDGE_SINK_RETRY_MAX=100ms", "BRIDGE_SINK_BATCH=50")...)
	first := startProc(t, nil, nil, producerVars...)
	waitStatus(t, "http://"+httpAddr+"/readyz", http.StatusOK)
	for b := range 5 {
		var body strings.Builder
		for i := range 100 {
			fmt.Fprintf(&body, "batch %d line %d\n", b, i)
		}
		for {
			resp, err := http.Post("http://"+httpAddr+"/v1/messages", "application/x-ndjson", strings.NewReader(body.String()))
			if err != nil {
				t.Fatal(err)
			}
			var answer map[string]any
			json.NewDecoder(resp.Body).Decode(&answer)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
				time.Sleep(10 * time.Millisecond) // the window: retry, as Retry-After says
				continue
			}
			if resp.StatusCode != http.StatusAccepted || answer["stored"] != true || answer["count"] != 100.0 {
				t.Fatalf("batch %d: %d %v\n%s", b, resp.StatusCode, answer, first.stderr.String())
			}
			break
		}
	}
	kill(first) // SIGKILL: nothing was confirmed
	second := startProc(t, nil, nil, producerVars...)
	waitStatus(t, "http://"+httpAddr+"/readyz", http.StatusOK)
	mu.Lock()
	open = true
	mu.Unlock()
	waitUntil(t, "500 messages at the webhook", time.Minute, func() bool { return len(h.distinct()) >= 500 })
	second.terminate(t, "producer")
	consumer.terminate(t, "consumer")
	got := h.distinct()
	for b := range 5 {
		for i := range 100 {
			if m := fmt.Sprintf("batch %d line %d", b, i); !got[m] {
				t.Fatalf("%q lost across the SIGKILL", m)
			}
		}
	}
}
