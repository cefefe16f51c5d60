package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// TestGarbageFrames: random bytes among the producer's frames are counted
// and dropped; the stream goes on, every message once and in order.
func TestGarbageFrames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	consumerLink := newInjectingLink(pipe.Consumer())
	consumer, _ := delivery.NewConsumerController[[]byte](consumerLink, nil, fastConsumer)
	ps := fastProducer
	ps.ProducerID = "p"
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	waitConsumer := run(t, ctx, consumer)
	waitProducer := run(t, ctx, producer)

	const n, garbage = 500, 200
	rng := rand.New(rand.NewPCG(1, 2))
	go func() {
		for i := range n {
			if i < garbage {
				junk := make([]byte, rng.IntN(64))
				for j := range junk {
					junk[j] = byte(rng.Uint32())
				}
				if len(junk) > 0 && rng.IntN(2) == 0 {
					junk[0] = 0xBD // past the magic byte, into the parser
				}
				consumerLink.inject <- junk
			}
			if _, err := producer.Send(ctx, adaptertest.Payload(i, 16)); err != nil {
				return
			}
		}
	}()
	got, err := consume(ctx, consumer, n)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	if bad := consumer.Stats().BadFrames; bad != garbage {
		t.Errorf("consumer counted %d bad frames; %d were injected", bad, garbage)
	}
	producer.Close()
	consumer.Close()
	if err := waitProducer(); err != nil {
		t.Error(err)
	}
	if err := waitConsumer(); err != nil {
		t.Error(err)
	}
}

// TestMessageTooLarge: the producer refuses a message over MaxMessageSize
// before taking it, and one over its consumer's limit as soon as the
// consumer said what it takes; a message it took before it knew goes as a
// tombstone: its Confirmation fails with a *MessageTooLargeError, the
// consumer skips it without stopping, and the stream goes on.
func TestMessageTooLarge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "p", MaxMessageSize: 5000, ChunkSize: 100})
	_, err := producer.Send(ctx, make([]byte, 5001))
	var tooLarge *delivery.MessageTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != 5001 || tooLarge.Limit != 5000 {
		t.Fatalf("Send of 5001 bytes = %v; want a *MessageTooLargeError", err)
	}
	if producer.Stats().AcceptedSeqNr != 0 {
		t.Fatal("the refused message was taken")
	}

	// Taken before the consumer says it takes at most 1000 bytes.
	waitProducer := run(t, ctx, producer)
	early, err := producer.SendWithConfirmation(ctx, make([]byte, 4000))
	if err != nil {
		t.Fatal(err)
	}
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil,
		delivery.ConsumerSettings{MaxMessageSize: 1000, ResendMin: 50 * time.Millisecond})
	waitConsumer := run(t, ctx, consumer)
	if err := early.Wait(ctx); !errors.As(err, &tooLarge) || tooLarge.Size != 4000 || tooLarge.Limit != 1000 {
		t.Fatalf("the Confirmation of a message too large for the consumer = %v; want a *MessageTooLargeError of 4000 over 1000", err)
	}
	if _, err := producer.Send(ctx, make([]byte, 4000)); !errors.As(err, &tooLarge) || tooLarge.Limit != 1000 {
		t.Fatalf("Send of 4000 bytes once the consumer said it takes 1000 = %v; want a *MessageTooLargeError", err)
	}
	if _, err := producer.Send(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	d, err := consumer.Receive(ctx)
	if err != nil || string(d.Message) != "after" {
		t.Fatalf("Receive = %q, %v; want the message after the refused one", d.Message, err)
	}
	d.Confirm()
	if p, c := producer.Stats().Refused, consumer.Stats().Refused; p != 1 || c != 1 {
		t.Errorf("refused: the producer counted %d, the consumer %d; want 1 each", p, c)
	}
	if err := producer.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v; want everything confirmed, the tombstone too", err)
	}
	consumer.Close()
	if err := waitConsumer(); err != nil {
		t.Errorf("consumer Run = %v; want it to have gone on", err)
	}
	waitProducer()
}

type point struct{ X, Y int }

// TestUnmarshalError: a payload the consumer's serializer rejects comes with
// an *UnmarshalError and a delivery that can be confirmed to skip it.
func TestUnmarshalError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[string](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	consumer, err := delivery.NewConsumerController(pipe.Consumer(), delivery.JSON[point]{}, delivery.ConsumerSettings{})
	if err != nil {
		t.Fatal(err)
	}
	waitProducer := run(t, ctx, producer)
	waitConsumer := run(t, ctx, consumer)
	go func() {
		for _, m := range []string{`{"X":1,"Y":2}`, `not json`, `{"X":3,"Y":4}`} {
			producer.Send(ctx, m)
		}
	}()
	var got []point
	for range 3 {
		d, err := consumer.Receive(ctx)
		var ue *delivery.UnmarshalError
		switch {
		case errors.As(err, &ue):
			if string(ue.Payload) != "not json" || ue.SeqNr != 2 || d.SeqNr != 2 {
				t.Errorf("unmarshal error %+v for delivery %d", ue, d.SeqNr)
			}
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, d.Message)
		}
		d.Confirm()
	}
	if len(got) != 2 || got[0] != (point{1, 2}) || got[1] != (point{3, 4}) {
		t.Errorf("got %v", got)
	}
	if err := producer.Shutdown(ctx); err != nil {
		t.Errorf("the skipped message was not confirmed: %v", err)
	}
	consumer.Close()
	waitProducer()
	waitConsumer()
}

func TestInvalidSettings(t *testing.T) {
	pipe, _ := memory.NewPipe(memory.Options{})
	link := pipe.Producer()
	for _, c := range []struct {
		setting string
		s       delivery.ProducerSettings
	}{
		{"ProducerID", delivery.ProducerSettings{}},
		{"ProducerID", delivery.ProducerSettings{ProducerID: strings.Repeat("x", 256)}},
		{"ProducerID", delivery.ProducerSettings{ProducerID: "\xff"}},
		{"MaxFrameSize", delivery.ProducerSettings{ProducerID: "p", MaxFrameSize: 100}},
		{"ChunkSize", delivery.ProducerSettings{ProducerID: "p", ChunkSize: -1}},
		{"MaxMessageSize", delivery.ProducerSettings{ProducerID: "p", MaxMessageSize: -5}},
		{"MaxUnconfirmed", delivery.ProducerSettings{ProducerID: "p", MaxUnconfirmed: -1}},
		{"FirstResendInterval", delivery.ProducerSettings{ProducerID: "p", FirstResendInterval: -time.Second}},
	} {
		_, err := delivery.NewProducerController[[]byte](link, nil, c.s)
		checkSettingError(t, err, c.setting)
	}
	for _, c := range []struct {
		setting string
		s       delivery.ConsumerSettings
	}{
		{"Window", delivery.ConsumerSettings{Window: -1}},
		{"Window", delivery.ConsumerSettings{Window: delivery.MaxWindow + 1}},
		{"ResendMin", delivery.ConsumerSettings{ResendMin: -time.Second}},
		{"ResendMax", delivery.ConsumerSettings{ResendMin: time.Minute, ResendMax: time.Second}},
		{"MaxMessageSize", delivery.ConsumerSettings{MaxMessageSize: -1}},
	} {
		_, err := delivery.NewConsumerController[[]byte](link, nil, c.s)
		checkSettingError(t, err, c.setting)
	}
	_, err := delivery.NewConsumerController[point](link, nil, delivery.ConsumerSettings{})
	checkSettingError(t, err, "Serializer")
	_, err = delivery.NewProducerController[[]byte](nil, nil, delivery.ProducerSettings{ProducerID: "p"})
	checkSettingError(t, err, "link")
}

func checkSettingError(t *testing.T, err error, setting string) {
	t.Helper()
	var se *delivery.SettingError
	if !errors.As(err, &se) || !errors.Is(err, delivery.ErrInvalidSettings) {
		t.Errorf("%s: got %v; want a *SettingError", setting, err)
		return
	}
	if se.Setting != setting || !strings.Contains(err.Error(), setting) {
		t.Errorf("error %q names %q; want %q", err, se.Setting, setting)
	}
}

// TestLifecycle: Run runs once, Close is idempotent and closes the link even
// if Run never ran.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	wait := run(t, ctx, producer)
	if _, err := producer.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// The message leaves (and is lost: no consumer) only once Run runs.
	if err := pipe.WaitFor(ctx, func(s memory.Stats) bool { return s.Sent > 0 }); err != nil {
		t.Fatal(err)
	}
	if err := producer.Run(ctx); !errors.Is(err, delivery.ErrAlreadyRunning) {
		t.Fatalf("a second Run = %v; want ErrAlreadyRunning", err)
	}
	producer.Close()
	producer.Close()
	if err := wait(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := producer.Run(ctx); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("Run after Close = %v; want ErrClosed", err)
	}

	link := pipe.Consumer()
	consumer, _ := delivery.NewConsumerController[[]byte](link, nil, delivery.ConsumerSettings{})
	consumer.Close()
	if err := link.Send(ctx, []byte("x")); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("the link of a consumer closed before Run is open: Send = %v", err)
	}
	if _, err := consumer.Receive(ctx); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("Receive after Close = %v; want ErrClosed", err)
	}
}

// TestReceiveBatch: a batch takes what is waiting; a payload that does not
// unmarshal ends the batch and comes alone next, with its error.
func TestReceiveBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[string](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	consumer, _ := delivery.NewConsumerController(pipe.Consumer(), delivery.JSON[point]{}, delivery.ConsumerSettings{})
	waitProducer := run(t, ctx, producer)
	waitConsumer := run(t, ctx, consumer)
	msgs := []string{`{"X":1}`, `{"X":2}`, `{"X":3}`, `bad`, `{"X":5}`}
	for _, m := range msgs {
		if _, err := producer.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until all five have been taken in by the consumer.
	for consumer.Stats().Delivered < 5 {
		time.Sleep(time.Millisecond) // Stats has no event to wait on
	}
	var got []int
	var bad []delivery.SeqNr
	for len(got)+len(bad) < 5 {
		batch, err := consumer.ReceiveBatch(ctx, nil, 10)
		var ue *delivery.UnmarshalError
		if errors.As(err, &ue) {
			if len(batch) != 1 || batch[0].SeqNr != 4 {
				t.Fatalf("the bad message came as %v", batch)
			}
			bad = append(bad, ue.SeqNr)
			batch[0].Confirm()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range batch {
			got = append(got, d.Message.X)
		}
		batch[len(batch)-1].Confirm()
	}
	if fmt.Sprint(got) != "[1 2 3 5]" || fmt.Sprint(bad) != "[4]" {
		t.Errorf("batches gave %v and the bad %v", got, bad)
	}
	if err := producer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	consumer.Close()
	waitProducer()
	waitConsumer()
}
