package kafka_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
	kafkago "github.com/segmentio/kafka-go"
)

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ok := kafka.Config{Brokers: []string{"127.0.0.1:9092"}}
	with := func(change func(*kafka.Config)) kafka.Config {
		c := ok
		change(&c)
		return c
	}
	tests := []struct {
		field string
		cfg   kafka.Config
	}{
		{"Brokers", kafka.Config{}},
		{"Brokers", kafka.Config{Brokers: []string{"localhost"}}},
		{"Brokers", kafka.Config{Brokers: []string{"localhost:0"}}},
		{"Brokers", kafka.Config{Brokers: []string{":9092"}}},
		{"DataTopic", with(func(c *kafka.Config) { c.DataTopic = "frames" })},
		{"DataTopic", with(func(c *kafka.Config) { c.DataTopic = "frames/{stream}" })},
		{"ControlTopic", with(func(c *kafka.Config) { c.ControlTopic = kafka.DefaultDataTopic })},
		{"ControlTopic", with(func(c *kafka.Config) { c.ControlTopic = strings.Repeat("x", 250) + "{stream}" })},
		{"ReplicationFactor", with(func(c *kafka.Config) { c.ReplicationFactor = -1 })},
		{"MaxMessageBytes", with(func(c *kafka.Config) { c.MaxMessageBytes = 1000 })},
		{"BatchTimeout", with(func(c *kafka.Config) { c.BatchTimeout = -time.Millisecond })},
		{"SendBufferBytes", with(func(c *kafka.Config) { c.SendBufferBytes = -1 })},
		{"FetchMaxWait", with(func(c *kafka.Config) { c.FetchMaxWait = time.Microsecond })},
		{"CommitInterval", with(func(c *kafka.Config) { c.CommitInterval = -time.Second })},
		{"RequestTimeout", with(func(c *kafka.Config) { c.RequestTimeout = time.Microsecond })},
		{"RetryBackoff", with(func(c *kafka.Config) { c.RetryBackoff = time.Millisecond })},
		{"SASL.Mechanism", with(func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"} })},
		{"SASL.Mechanism", with(func(c *kafka.Config) { c.SASL = kafka.SASL{Username: "u", Password: "p"} })},
		{"SASL.Username", with(func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: "scram-sha-512", Password: "p"} })},
		{"SASL.Password", with(func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: "PLAIN", Username: "u"} })},
	}
	for _, tc := range tests {
		_, err := kafka.New(context.Background(), tc.cfg)
		var ce *kafka.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%+v): %v; want a *kafka.ConfigError naming %s", tc.cfg, err, tc.field)
			continue
		}
		if strings.Contains(err.Error(), "Password") && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error repeats a password: %v", err)
		}
	}
}

func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx := testContext(t, 10*time.Second)
	_, err = kafka.New(ctx, kafka.Config{Brokers: []string{addr}})
	var ce *kafka.ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("New against %s, where nothing listens: %v; want a *kafka.ConnectError naming the address", addr, err)
	}
	t.Log(err)
}

// TestLinkErrors: what Link, Send and Receive refuse, and what Close
// leaves, on the test Kafka (Apache Kafka under `make test`; kfake in a
// plain `go test` with none running).
func TestLinkErrors(t *testing.T) {
	t.Parallel()
	c, _, _ := testKafka(t, kafka.Config{})
	ctx := testContext(t, time.Minute)

	for _, name := range []string{"", "a stream", "ström", "a/b"} {
		var se *kafka.StreamNameError
		if _, err := c.Link(ctx, name, delivery.ConsumerEnd); !errors.As(err, &se) {
			t.Errorf("Link(%q): %v; want a *kafka.StreamNameError", name, err)
		}
	}
	if _, err := c.Link(ctx, "s", delivery.End(7)); err == nil {
		t.Error("Link with an unknown end succeeded")
	}

	stream := newStream(t, c)
	consumer := openLink(t, c, stream, delivery.ConsumerEnd)
	producer := openLink(t, c, stream, delivery.ProducerEnd)
	if got, want := producer.MaxFrameSize(), kafka.DefaultMaxMessageBytes-kafka.RecordOverhead; got != want {
		t.Errorf("MaxFrameSize %d; want %d", got, want)
	}
	var tooLarge *delivery.FrameTooLargeError
	if err := producer.Send(ctx, make([]byte, producer.MaxFrameSize()+1)); !errors.As(err, &tooLarge) || !errors.Is(err, delivery.ErrFrameTooLarge) ||
		tooLarge.Carrier != "kafka" || tooLarge.Limit != producer.MaxFrameSize() {
		t.Errorf("Send of a frame over the limit: %v; want a *delivery.FrameTooLargeError", err)
	}
	// The link carries on; a frame at the limit goes through.
	big := adaptertest.Payload(1, producer.MaxFrameSize())
	if err := producer.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	f, err := consumer.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i, err := adaptertest.Index(f.Data); err != nil || i != 1 || len(f.Data) != len(big) {
		t.Fatalf("received message %d of %d bytes (%v); want message 1 of %d bytes", i, len(f.Data), err, len(big))
	}
	f.Release()

	// After Close, Send and Receive fail with ErrLinkClosed, at once.
	receiving := make(chan error, 1)
	go func() {
		_, err := producer.Receive(ctx)
		receiving <- err
	}()
	producer.Close()
	producer.Close() // idempotent
	if err := <-receiving; !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Receive blocked across Close: %v; want ErrLinkClosed", err)
	}
	if err := producer.Send(ctx, []byte("x")); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Send after Close: %v; want ErrLinkClosed", err)
	}
	if _, err := producer.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Receive after Close: %v; want ErrLinkClosed", err)
	}

	// Closing the carrier closes its links and refuses new ones.
	c.Close()
	if _, err := consumer.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Receive on a link of a closed carrier: %v; want ErrLinkClosed", err)
	}
	if _, err := c.Link(ctx, stream, delivery.ConsumerEnd); !errors.Is(err, kafka.ErrClosed) {
		t.Errorf("Link on a closed carrier: %v; want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSendDuringOutage: while the broker is away, Send takes frames until
// its buffer is full, then blocks (here until its context ends); once the
// broker is back at the address, the frames it took are written, in order.
// The test Kafka, stopped and started through its control command under
// `make test` (not parallel: it has the broker to itself meanwhile); kfake
// with a data directory in a plain `go test`.
func TestSendDuringOutage(t *testing.T) {
	broker := restartableBroker(t)
	t.Logf("on %s", broker.name)
	c := newCarrier(t, kafka.Config{Brokers: broker.brokers, SendBufferBytes: 4096, RetryBackoff: 100 * time.Millisecond})
	ctx := testContext(t, time.Minute)
	stream := newStream(t, c)
	consumer := openLink(t, c, stream, delivery.ConsumerEnd)
	producer := openLink(t, c, stream, delivery.ProducerEnd)
	receive := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			f, err := consumer.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := adaptertest.Index(f.Data); err != nil || got != i {
				t.Fatalf("received message %d (%v); want %d", got, err, i)
			}
			f.Release()
		}
	}
	for i := range 5 {
		if err := producer.Send(ctx, adaptertest.Payload(i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	receive(0, 5)

	broker.stop()
	waitFor(t, 10*time.Second, "the producer end to see the broker gone", func() bool { return !producer.Status().Connected })
	taken := 5
	for {
		sendCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := producer.Send(sendCtx, adaptertest.Payload(taken, 1000))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		taken++
		if taken > 100 {
			t.Fatal("Send took 100 frames of 1000 bytes with the broker away and a buffer of 4096 bytes")
		}
	}
	t.Logf("Send took %d frames while the broker was away, then blocked", taken-5)
	if taken-5 != 4 {
		t.Errorf("Send took %d frames of 1000 bytes into a buffer of 4096; want 4", taken-5)
	}

	broker.start()
	receive(5, taken-5)
	if s := producer.Status(); !s.Connected || s.Reconnects == 0 {
		t.Errorf("producer end status %+v; want connected after a reconnect", s)
	}
}

// TestTopicMessageLimit: a stream whose topics were made beforehand with a
// max.message.bytes below Config.MaxMessageBytes gets links that say so
// (MaxFrameSize) and keep to it: a frame at the limit goes through, the
// broker taking it; one over it is refused by Send. On the test Kafka
// (Apache Kafka under `make test`; kfake in a plain `go test` with none
// running).
func TestTopicMessageLimit(t *testing.T) {
	t.Parallel()
	c, brokers, _ := testKafka(t, kafka.Config{})
	ctx := testContext(t, time.Minute)
	stream := newStream(t, c)
	const limit = 64 << 10
	transport := &kafkago.Transport{}
	defer transport.CloseIdleConnections()
	admin := &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: transport, Timeout: 10 * time.Second}
	req := &kafkago.CreateTopicsRequest{}
	for _, topic := range []string{"bridge." + stream + ".data", "bridge." + stream + ".control"} {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: -1,
			ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(limit)}}})
	}
	res, err := admin.CreateTopics(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for topic, err := range res.Errors {
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}

	consumer := openLink(t, c, stream, delivery.ConsumerEnd)
	producer := openLink(t, c, stream, delivery.ProducerEnd)
	for _, l := range []*kafka.Link{consumer, producer} {
		if got, want := l.MaxFrameSize(), limit-kafka.RecordOverhead; got != want {
			t.Fatalf("the %v end's MaxFrameSize is %d on topics of max.message.bytes %d; want %d", l.End(), got, limit, want)
		}
	}
	var tooLarge *delivery.FrameTooLargeError
	if err := producer.Send(ctx, make([]byte, producer.MaxFrameSize()+1)); !errors.As(err, &tooLarge) || tooLarge.Limit != producer.MaxFrameSize() {
		t.Errorf("Send of a frame over the topic's limit: %v; want a *delivery.FrameTooLargeError", err)
	}
	for i := range 3 {
		if err := producer.Send(ctx, adaptertest.Payload(i, producer.MaxFrameSize())); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		f, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := adaptertest.Index(f.Data); err != nil || got != i || len(f.Data) != producer.MaxFrameSize() {
			t.Fatalf("received message %d of %d bytes (%v); want message %d of %d bytes", got, len(f.Data), err, i, producer.MaxFrameSize())
		}
		f.Release()
	}
}
