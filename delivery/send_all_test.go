package delivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// TestTrySendAll: a batch is taken whole, numbered in one run, or not at
// all: one that needs more sequence numbers than the window has left (a
// chunked message counts its chunks) takes nothing, and one with a message
// too large takes nothing either.
func TestTrySendAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "p", ChunkSize: 64, MaxMessageSize: 1000, FirstResendInterval: 5 * time.Millisecond})
	cs := fastConsumer
	cs.Window = 10
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	waitProducer := run(t, ctx, producer)
	waitConsumer := run(t, ctx, consumer)
	defer func() {
		producer.Close()
		consumer.Close()
		waitProducer()
		waitConsumer()
	}()
	// Until the consumer grants its window only the first message may go;
	// a batch that opens the stream is taken whole, all of it but the
	// first held until the window is granted.
	if _, err := producer.TrySendAllWithConfirmation([][]byte{adaptertest.Payload(0, 8)}); err != nil {
		t.Fatalf("a batch opening the stream: %v", err)
	}
	d, err := consumer.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for producer.Demand() < 9 { // the window, 1 to 10, is granted once the first is delivered
		select {
		case <-ctx.Done():
			t.Fatal("no window granted")
		case <-time.After(time.Millisecond):
		}
	}
	// 3 small messages and one of 130 bytes (3 chunks): 6 sequence numbers.
	batch := [][]byte{adaptertest.Payload(1, 8), adaptertest.Payload(2, 8), adaptertest.Payload(3, 130), adaptertest.Payload(4, 8)}
	cs1, err := producer.TrySendAllWithConfirmation(batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs1) != 4 || cs1[0].SeqNr() != 2 || cs1[2].SeqNr() != 6 || cs1[3].SeqNr() != 7 {
		t.Fatalf("sequence numbers %v, want 2, 3, 6, 7", seqNrs(cs1))
	}
	// The window ends at 10: 3 left, and this batch needs 5.
	if _, err := producer.TrySendAllWithConfirmation([][]byte{adaptertest.Payload(5, 8), adaptertest.Payload(6, 130), adaptertest.Payload(7, 8)}); !errors.Is(err, delivery.ErrNoDemand) {
		t.Fatalf("a batch larger than the window left: %v, want ErrNoDemand", err)
	}
	var tooLarge *delivery.MessageTooLargeError
	if _, err := producer.TrySendAllWithConfirmation([][]byte{adaptertest.Payload(5, 8), make([]byte, 1001)}); !errors.As(err, &tooLarge) {
		t.Fatalf("a batch with a message too large: %v, want a *MessageTooLargeError", err)
	}
	// Nothing of the refused batches was taken: the next message is 8.
	seqNr, err := producer.TrySend(adaptertest.Payload(5, 8))
	if err != nil || seqNr != 8 {
		t.Fatalf("the next message took %d (%v), want 8", seqNr, err)
	}
	d.Confirm()
	want := []int{1, 2, 3, 4, 5}
	for _, i := range want {
		d, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := adaptertest.Index(d.Message)
		if err != nil || got != i {
			t.Fatalf("received message %d (%v; seq %d, %d bytes), want %d", got, err, d.SeqNr, len(d.Message), i)
		}
		d.Confirm()
	}
	for _, c := range cs1 {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("confirmation of %d: %v", c.SeqNr(), err)
		}
	}
}

// TestTrySendAllOpens: the first batch of a producer's lifetime is taken
// whole though the consumer has granted no window yet, and arrives in
// order.
func TestTrySendAllOpens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "p", FirstResendInterval: 5 * time.Millisecond})
	cs := fastConsumer
	cs.Window = 4
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	waitProducer := run(t, ctx, producer)
	waitConsumer := func() error { return nil }
	defer func() {
		producer.Close()
		consumer.Close()
		waitProducer()
		waitConsumer()
	}()
	var batch [][]byte
	for i := range 10 { // more than the window, too
		batch = append(batch, adaptertest.Payload(i, 8))
	}
	// The consumer starts after both batches, so that none of its grants
	// can come first: the opening batch is taken on no window at all.
	confirmations, err := producer.TrySendAllWithConfirmation(batch)
	if err != nil || len(confirmations) != 10 || confirmations[9].SeqNr() != 10 {
		t.Fatalf("the opening batch: %v %v", seqNrs(confirmations), err)
	}
	// Held now: the next batch waits for the window like any other.
	if _, err := producer.TrySendAllWithConfirmation(batch[:2]); !errors.Is(err, delivery.ErrNoDemand) {
		t.Fatalf("a batch after the opening one: %v, want ErrNoDemand", err)
	}
	waitConsumer = run(t, ctx, consumer)
	for i := range 10 {
		d, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := adaptertest.Index(d.Message); err != nil || got != i {
			t.Fatalf("received %d (%v), want %d", got, err, i)
		}
		d.Confirm()
	}
	for _, c := range confirmations {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func seqNrs(cs []*delivery.Confirmation) []delivery.SeqNr {
	out := make([]delivery.SeqNr, len(cs))
	for i, c := range cs {
		out[i] = c.SeqNr()
	}
	return out
}

// TestTrySendAllMessages: a batch's headers arrive with each message, a
// chunked one's too; a message with headers past the limits makes the
// batch take nothing.
func TestTrySendAllMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "p", ChunkSize: 256, FirstResendInterval: 5 * time.Millisecond})
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, fastConsumer)
	waitProducer := run(t, ctx, producer)
	waitConsumer := run(t, ctx, consumer)
	defer func() {
		producer.Close()
		consumer.Close()
		waitProducer()
		waitConsumer()
	}()
	// Until the consumer grants its window only the first message may go.
	if _, err := producer.Send(ctx, adaptertest.Payload(0, 8)); err != nil {
		t.Fatal(err)
	}
	first, err := consumer.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first.Confirm()
	for producer.Demand() < 6 { // 1, 2, and 3 in 4 chunks at most
		select {
		case <-ctx.Done():
			t.Fatal("no window granted")
		case <-time.After(time.Millisecond):
		}
	}
	bad := delivery.Headers{{Name: "bad name", Value: "x"}}
	if _, err := producer.TrySendAllMessages([]delivery.Outgoing[[]byte]{{Message: adaptertest.Payload(0, 8)}, {Message: adaptertest.Payload(1, 8), Headers: bad}}); !errors.As(err, new(*delivery.HeaderError)) {
		t.Fatalf("a batch with a bad header: %v, want a *HeaderError", err)
	}
	msgs := []delivery.Outgoing[[]byte]{
		{Message: adaptertest.Payload(1, 8), Headers: delivery.Headers{{Name: "Bridge-Meta-Line", Value: "1"}}},
		{Message: adaptertest.Payload(2, 8)},
		{Message: adaptertest.Payload(3, 700), Headers: delivery.Headers{{Name: "bridge-meta-line", Value: "3"}}},
	}
	cs, err := producer.TrySendAllMessages(msgs)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range []string{"1", "", "3"} {
		i := k + 1
		d, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := d.Headers.Get("bridge-meta-line")
		if idx, _ := adaptertest.Index(d.Message); idx != i || got != want {
			t.Fatalf("message %d with header %q; want %d with %q", idx, got, i, want)
		}
		d.Confirm()
	}
	if err := cs[2].Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
