package bridge_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
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

// carrierStreams configure a stream over each broker that keeps a
// dead-letter stream, and delete what it leaves there (the stream's
// queues or topics, and the dead-letter stream, by its documented name)
// when the test ends.
var carrierStreams = []struct {
	name string
	set  func(t *testing.T, cfg *bridge.Config)
}{
	{"nats-jetstream", func(t *testing.T, cfg *bridge.Config) {
		url := os.Getenv("BRIDGE_TEST_NATS_URL")
		if url == "" {
			adaptertest.BrokerUnavailable(t, "BRIDGE_TEST_NATS_URL is not set")
		}
		cfg.Transport, cfg.NATSURL, cfg.NATSJetStream = "nats", url, true
		t.Cleanup(func() {
			nc, err := natsgo.Connect(url)
			if err != nil {
				return
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			if err := js.DeleteStream(context.Background(), "bridge_"+cfg.Stream+"_dlq"); err != nil {
				t.Errorf("the dead-letter stream by its documented name: %v", err)
			}
		})
	}},
	{"amqp", func(t *testing.T, cfg *bridge.Config) {
		cfg.Transport, cfg.AMQPURL = "amqp", adaptertest.RabbitMQ(t)
		t.Cleanup(func() { adaptertest.DeleteQueues(cfg.AMQPURL, "bridge."+cfg.Stream+".dlq") })
	}},
	{"kafka", func(t *testing.T, cfg *bridge.Config) {
		cfg.Transport, cfg.KafkaBrokers = "kafka", adaptertest.Kafka(t)
		t.Cleanup(func() {
			tr := &kafkago.Transport{}
			defer tr.CloseIdleConnections()
			c := &kafkago.Client{Addr: kafkago.TCP(cfg.KafkaBrokers...), Transport: tr, Timeout: 30 * time.Second}
			topic := "bridge." + cfg.Stream + ".dlq"
			res, err := c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
			if err == nil {
				err = res.Errors[topic]
			}
			if err != nil {
				t.Errorf("the dead-letter topic by its documented name: %v", err)
			}
			c.DeleteGroups(context.Background(), &kafkago.DeleteGroupsRequest{GroupIDs: []string{"bridge." + cfg.Stream + ".dlq"}})
		})
	}},
}

// TestPoisonMessageCarrierDLQ: with BRIDGE_DLQ=carrier, over each broker
// that keeps one, the message the webhook refuses goes to the dead-letter
// stream on that broker while the others arrive in order; `bridge dlq
// list` shows it, the metrics count it, and `bridge dlq replay`, as the
// stream's producer, brings it back and removes it.
func TestPoisonMessageCarrierDLQ(t *testing.T) {
	const n, poison = 300, 150
	for _, cs := range carrierStreams {
		t.Run(cs.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Stream = fmt.Sprintf("dlqe2e-%d", time.Now().UnixNano())
			cs.set(t, &cfg)
			t.Cleanup(func() { deleteStream(t, cfg) })
			var mu sync.Mutex
			refusing := true
			hook := newReceiver(n-1, func(m string) int {
				mu.Lock()
				defer mu.Unlock()
				if m == msgName(poison) && refusing {
					return http.StatusUnprocessableEntity
				}
				return 0
			})
			consumerCfg := cfg
			consumerCfg.Role, consumerCfg.Sink, consumerCfg.SinkURL, consumerCfg.DLQ = "consumer", "http", serve(t, hook), "carrier"
			consumerCfg.SinkBatch, consumerCfg.SinkRetryMax, consumerCfg.HTTPAddr = 50, 50*time.Millisecond, adaptertest.FreeAddr(t)
			start(t, consumerCfg, io.Discard)
			producerCfg := cfg
			producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
			producer := start(t, producerCfg, io.Discard)
			waitReady(t, producerCfg.HTTPAddr)
			sendNumbered(t, "http://"+producerCfg.HTTPAddr+"/v1/messages", 1, n)
			hook.wait(t, time.Minute)
			metricIs(t, consumerCfg.HTTPAddr, "bridge_dlq_waiting", 1)
			for i, j := 0, 1; i < n-1; i, j = i+1, j+1 {
				if j == poison {
					j++
				}
				if got := hook.accepted()[i]; got != msgName(j) {
					t.Fatalf("message %d is %s, want %s", i, got, msgName(j))
				}
			}
			records := listDLQ(t, consumerCfg)
			if len(records) != 1 || string(records[0].Body()) != msgName(poison) || records[0].Reason != bridge.ReasonRefused || records[0].Metadata.SeqNr != poison {
				t.Fatalf("dead letters: %+v", records)
			}
			if v := metric(t, consumerCfg.HTTPAddr, "bridge_dlq_oldest_age_seconds"); v < 0 || v > 60 {
				t.Errorf("bridge_dlq_oldest_age_seconds = %v", v)
			}

			// Replayed as the stream's producer: the usual one stops first.
			producer.stop(t)
			mu.Lock()
			refusing = false
			mu.Unlock()
			replayCfg := consumerCfg
			replayCfg.HTTPAddr = ""
			if err := replayCfg.ValidateDLQ(true); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out strings.Builder
			if err := bridge.ReplayDLQ(ctx, replayCfg, dlqEnv(t, &out, io.Discard)); err != nil {
				t.Fatal(err)
			}
			if got := hook.accepted(); len(got) != n || got[n-1] != msgName(poison) {
				t.Errorf("after the replay (%s) the webhook has %d messages, the last %q", out.String(), len(got), got[len(got)-1])
			}
			if records := listDLQ(t, consumerCfg); len(records) != 0 {
				t.Errorf("still there after the replay: %+v", records)
			}
			metricIs(t, consumerCfg.HTTPAddr, "bridge_dlq_waiting", 0)
		})
	}
}

// deleteStream removes what the stream left on its broker.
func deleteStream(t *testing.T, cfg bridge.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	car, err := bridge.OpenCarrier(ctx, &cfg, dlqEnv(t, io.Discard, io.Discard).Log)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer car.Close()
	if err := car.DeleteStream(ctx, cfg.Stream); err != nil {
		t.Logf("cleanup: %v", err)
	}
}
