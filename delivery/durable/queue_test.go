package durable_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

func openQueue(t *testing.T, path string) *durable.Queue {
	t.Helper()
	q, err := durable.Open(path, durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// lifetime runs one producer lifetime on the queue at path, over pipe.
func lifetime(t *testing.T, ctx context.Context, pipe *memory.Pipe, path string) *delivery.ProducerController[[]byte] {
	t.Helper()
	s := adaptertest.FastProducer
	s.ProducerID = "durable"
	s.DurableQueue = openQueue(t, path)
	p, err := delivery.NewProducerController[[]byte](pipe.Producer(), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	t.Cleanup(func() { p.Close() })
	return p
}

func consumer(t *testing.T, ctx context.Context, pipe *memory.Pipe) *delivery.ConsumerController[[]byte] {
	t.Helper()
	c, err := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, adaptertest.FastConsumer)
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(ctx)
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, ctx context.Context, c *delivery.ConsumerController[[]byte], n int) []int {
	t.Helper()
	var got []int
	for range n {
		d, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i, err := adaptertest.Index(d.Message)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, i)
		d.Confirm()
	}
	return got
}

func load(t *testing.T, path string) delivery.DurableState {
	t.Helper()
	q := openQueue(t, path)
	defer q.Close()
	st, err := q.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRecoverUnconfirmed: a producer closed with messages the consumer never
// confirmed resends them in its next lifetime, from the oldest, and numbers
// on after them.
func TestRecoverUnconfirmed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "p.db")
	pipe, _ := memory.NewPipe(memory.Options{})

	// A consumer takes five and confirms none, then dies with the producer.
	deaf := consumer(t, ctx, pipe)
	first := lifetime(t, ctx, pipe, path)
	for i := range 5 {
		c, err := first.SendWithConfirmation(ctx, adaptertest.Payload(i, 32))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitStored(ctx); err != nil {
			t.Fatalf("message %d never stored: %v", i, err)
		}
		if _, err := deaf.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deaf.Close()
	first.Close()
	if st := load(t, path); len(st.Messages) != 5 || st.Confirmed != 0 {
		t.Fatalf("stored %d messages, confirmed %d; want 5 and 0", len(st.Messages), st.Confirmed)
	}

	cons := consumer(t, ctx, pipe)
	second := lifetime(t, ctx, pipe, path)
	if seqNr, err := second.Send(ctx, adaptertest.Payload(5, 32)); err != nil || seqNr != 6 {
		t.Fatalf("the next lifetime's first Send = %d, %v; want sequence number 6", seqNr, err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, receive(t, ctx, cons, 6), 6)
	if err := second.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := load(t, path); len(st.Messages) != 0 || st.Confirmed != 6 {
		t.Errorf("after shutdown the queue holds %d messages, confirmed %d; want 0 and 6", len(st.Messages), st.Confirmed)
	}
	if second.Epoch() <= first.Epoch() {
		t.Errorf("epoch %d after %d", second.Epoch(), first.Epoch())
	}
}

// TestRecoverEmptyQueue: a new file starts a producer at sequence number 1.
func TestRecoverEmptyQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	cons := consumer(t, ctx, pipe)
	p := lifetime(t, ctx, pipe, filepath.Join(t.TempDir(), "new", "p.db"))
	if seqNr, err := p.Send(ctx, adaptertest.Payload(0, 8)); err != nil || seqNr != 1 {
		t.Fatalf("Send = %d, %v", seqNr, err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, receive(t, ctx, cons, 1), 1)
}

// TestRecoverOnlyConfirmed: with nothing unconfirmed, the next lifetime's
// first message goes out at once and is delivered (the Akka flaw, pekko
// #2760, left the window behind the numbering and failed the next send).
func TestRecoverOnlyConfirmed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "p.db")
	pipe, _ := memory.NewPipe(memory.Options{})
	cons := consumer(t, ctx, pipe)

	first := lifetime(t, ctx, pipe, path)
	go func() {
		for i := range 100 {
			first.Send(ctx, adaptertest.Payload(i, 8))
		}
	}()
	got := receive(t, ctx, cons, 100)
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := load(t, path); len(st.Messages) != 0 || st.Confirmed != 100 {
		t.Fatalf("the queue holds %d messages, confirmed %d; want 0 and 100", len(st.Messages), st.Confirmed)
	}

	second := lifetime(t, ctx, pipe, path)
	if seqNr, err := second.Send(ctx, adaptertest.Payload(100, 8)); seqNr != 101 || err != nil {
		t.Fatalf("Send = %d, %v; want 101", seqNr, err)
	}
	got = append(got, receive(t, ctx, cons, 1)...)
	adaptertest.CheckExactlyOnceInOrder(t, got, 101)
}

// TestRecoverPartialChunked: a message stored in part is dropped; what came
// before it is resent, and numbering goes on after the last whole message.
func TestRecoverPartialChunked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "p.db")
	q := openQueue(t, path)
	whole := adaptertest.Payload(0, 20)
	err := q.Store(ctx, delivery.DurableUpdate{Epoch: 7, Messages: []delivery.StoredMessage{
		{SeqNr: 1, FirstChunk: true, LastChunk: true, Payload: whole},
		{SeqNr: 2, FirstChunk: true, Payload: []byte("first chunk of an unfinished message")},
		{SeqNr: 3, Payload: []byte("its middle; the last chunk never made it")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()

	pipe, _ := memory.NewPipe(memory.Options{})
	cons := consumer(t, ctx, pipe)
	p := lifetime(t, ctx, pipe, path)
	if seqNr, err := p.Send(ctx, adaptertest.Payload(1, 20)); err != nil || seqNr != 2 {
		t.Fatalf("Send = %d, %v; want sequence number 2, after the last whole message", seqNr, err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, receive(t, ctx, cons, 2), 2)
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := load(t, path); len(st.Messages) != 0 || st.Epoch <= 7 {
		t.Errorf("queue after recovery: %d messages, epoch %d", len(st.Messages), st.Epoch)
	}
}

// TestEpochAboveStored: an epoch stored from a clock far ahead still makes
// the next lifetime's epoch larger.
func TestEpochAboveStored(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "p.db")
	q := openQueue(t, path)
	const future = uint64(1) << 62
	if err := q.Store(ctx, delivery.DurableUpdate{Epoch: future}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	pipe, _ := memory.NewPipe(memory.Options{})
	p := lifetime(t, ctx, pipe, path)
	if _, err := p.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if p.Epoch() <= future {
		t.Errorf("epoch %d is not above the stored %d", p.Epoch(), future)
	}
}

// TestCorruptQueueRefused: a file that is not a readable producer queue is
// refused with an error naming it; the producer never starts empty on it.
func TestCorruptQueueRefused(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600)
	other := filepath.Join(dir, "other.db")
	db, _ := bolt.Open(other, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("someone else's")); return err })
	db.Close()
	truncated := filepath.Join(dir, "truncated.db")
	q := openQueue(t, truncated)
	q.Store(context.Background(), delivery.DurableUpdate{Messages: []delivery.StoredMessage{{SeqNr: 1, FirstChunk: true, LastChunk: true, Payload: make([]byte, 100000)}}})
	q.Close()
	data, _ := os.ReadFile(truncated)
	os.WriteFile(truncated, data[:len(data)/2], 0o600)

	damaged := filepath.Join(dir, "damaged.db")
	q = openQueue(t, damaged)
	payload := []byte(strings.Repeat("precious ", 500))
	q.Store(context.Background(), delivery.DurableUpdate{Messages: []delivery.StoredMessage{{SeqNr: 1, FirstChunk: true, LastChunk: true, Payload: payload}}})
	q.Close()
	data, _ = os.ReadFile(damaged)
	at := strings.Index(string(data), "precious precious")
	data[at] = 'P' // a bit flipped on disk
	os.WriteFile(damaged, data, 0o600)
	q = openQueue(t, damaged)
	_, err := q.Load(context.Background())
	q.Close()
	if !errors.Is(err, durable.ErrCorrupt) || !strings.Contains(err.Error(), damaged) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("damaged.db: Load = %v; want a checksum failure naming the file", err)
	}

	for _, path := range []string{garbage, other, truncated} {
		_, err := durable.Open(path, durable.Options{})
		var fe *durable.FileError
		if !errors.Is(err, durable.ErrCorrupt) || !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Open = %v; want ErrCorrupt naming the file", filepath.Base(path), err)
		}
	}
}

// TestLockedQueueRefused: a queue held by a live producer is refused.
func TestLockedQueueRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	q := openQueue(t, path)
	defer q.Close()
	_, err := durable.Open(path, durable.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, durable.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open = %v; want ErrLocked naming the file", err)
	}
}

// TestQueueBound: the producer stops taking messages once it holds
// MaxUnconfirmedBytes, and its depth shows in Stats.
func TestQueueBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{})
	s := adaptertest.FastProducer
	s.DurableQueue = openQueue(t, filepath.Join(t.TempDir(), "p.db"))
	s.MaxUnconfirmedBytes = 10_000
	p, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, s)
	go p.Run(ctx)
	defer p.Close()
	// A consumer that grants a large window and confirms nothing.
	cs := adaptertest.FastConsumer
	cs.Window = 1000
	cons, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, cs)
	go cons.Run(ctx)
	defer cons.Close()
	if _, err := p.Send(ctx, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Receive(ctx); err != nil { // granted: the window is open
		t.Fatal(err)
	}
	sent := 1
	for ; sent < 100; sent++ {
		ctxShort, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := p.Send(ctxShort, make([]byte, 1000))
		cancelShort()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := pipeQuiet(ctx, p, 10); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if sent != 10 || st.HeldBytes != 10_000 || st.Unconfirmed() != 10 {
		t.Errorf("took %d messages, holds %d bytes, %d unconfirmed; want 10, 10000, 10", sent, st.HeldBytes, st.Unconfirmed())
	}
}

// pipeQuiet waits until the producer has taken n messages into its
// accounting (Stats lag Send by a hop through the controller).
func pipeQuiet(ctx context.Context, p *delivery.ProducerController[[]byte], n delivery.SeqNr) error {
	for p.Stats().AcceptedSeqNr < n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond) // Stats has no event to wait on
	}
	return nil
}

// TestHeadersSurviveRestart: a message's headers are stored with it, and a
// producer restarted on the queue resends them, chunked messages too.
func TestHeadersSurviveRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "p.db")
	pipe, _ := memory.NewPipe(memory.Options{})
	headers := delivery.Headers{{Name: "content-type", Value: "text/plain"}, {Name: "key", Value: "order-7"}}

	deaf := consumer(t, ctx, pipe) // takes, confirms nothing
	first := lifetime(t, ctx, pipe, path)
	for i, size := range []int{32, 600 << 10} {
		_, c, err := first.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: adaptertest.Payload(i, size), Headers: headers, Confirm: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitStored(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := deaf.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deaf.Close()
	first.Close()

	cons := consumer(t, ctx, pipe)
	second := lifetime(t, ctx, pipe, path)
	for i := range 2 {
		d, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := adaptertest.Index(d.Message); got != i || len(d.Headers) != 2 || d.Headers[1] != headers[1] {
			t.Fatalf("after the restart: message %d with headers %v; want %d with %v", got, d.Headers, i, headers)
		}
		d.Confirm()
	}
	if err := second.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// Confirmations out of order (a work-pulling producer's workers): each
// message in Drop is gone on load, whatever its neighbours.
func TestDropOutOfOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := openQueue(t, path)
	ctx := context.Background()
	var msgs []delivery.StoredMessage
	for i := 1; i <= 6; i++ {
		msgs = append(msgs, delivery.StoredMessage{SeqNr: delivery.SeqNr(i), FirstChunk: true, LastChunk: true, Payload: []byte{byte(i)}})
	}
	if err := q.Store(ctx, delivery.DurableUpdate{Messages: msgs, Drop: []delivery.SeqNr{2, 5}}); err != nil {
		t.Fatal(err)
	}
	if err := q.Store(ctx, delivery.DurableUpdate{Confirmed: 1, Drop: []delivery.SeqNr{1, 3, 99}}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	st, err := openQueue(t, path).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []delivery.SeqNr
	for _, m := range st.Messages {
		got = append(got, m.SeqNr)
	}
	if fmt.Sprint(got) != "[4 6]" || st.Confirmed != 1 {
		t.Errorf("loaded %v confirmed %d, want [4 6] and 1", got, st.Confirmed)
	}
}
