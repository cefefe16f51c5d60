package tcp_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// openPair opens a stream's two links over two carriers on one address.
func openPair(t *testing.T, ctx context.Context, stream string) (producer, consumer *tcp.Link) {
	t.Helper()
	addr := adaptertest.FreeAddr(t)
	for _, end := range []delivery.End{delivery.ConsumerEnd, delivery.ProducerEnd} {
		c, err := tcp.New(addr, delivery.ConsumerEnd, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		l, err := c.Link(ctx, stream, end)
		if err != nil {
			t.Fatal(err)
		}
		if end == delivery.ProducerEnd {
			producer = l
		} else {
			consumer = l
		}
	}
	return producer, consumer
}

// frameOf fills buf with a frame of size bytes that says which it is.
func frameOf(buf []byte, i, size int) []byte {
	buf = buf[:size]
	for k := range buf {
		buf[k] = byte(i + k/4096)
	}
	return buf
}

// TestLargeAndSmallFramesInOrder: frames large enough to be written by
// their Send itself (without a copy) and small ones, queued for the
// connection's writer, arrive whole and in the order sent, though the
// sender reuses one buffer for all of them as the Link contract lets it.
func TestLargeAndSmallFramesInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	producer, consumer := openPair(t, ctx, "large")
	sizes := []int{10, 300 << 10, 1, 1 << 20, 300 << 10, 300 << 10, 7, 256 << 10, 256<<10 - 1, 2, 1 << 20}
	for range 4 {
		sizes = append(sizes, sizes...)
	}
	received := make(chan error, 1)
	go func() {
		want := make([]byte, 1<<20)
		for i, size := range sizes {
			f, err := consumer.Receive(ctx)
			if err == nil && !bytes.Equal(f.Data, frameOf(want, i, size)) {
				err = errors.New("a frame arrived changed or out of order")
			}
			if err != nil {
				received <- err
				return
			}
		}
		received <- nil
	}()
	buf := make([]byte, 1<<20)
	for i, size := range sizes {
		if err := producer.Send(ctx, frameOf(buf, i, size)); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := <-received; err != nil {
		t.Fatal(err)
	}
}

// TestLargeSendCancelled: a Send writing a large frame to a peer that
// reads nothing returns when its ctx ends, and the link goes on over a new
// connection.
func TestLargeSendCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	producer, consumer := openPair(t, ctx, "stuck")
	frame := make([]byte, 1<<20)
	sendCtx, stop := context.WithCancel(ctx)
	sent := make(chan error, 1)
	go func() {
		// The consumer's buffers take some frames; then a Send blocks, and
		// returns only when its ctx ends. (If none has blocked by the time
		// ctx ends, the Send then running returns all the same.)
		for {
			if err := producer.Send(sendCtx, frame); err != nil {
				sent <- err
				return
			}
		}
	}()
	select {
	case err := <-sent:
		t.Fatalf("Send failed before it was cancelled: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	stop()
	select {
	case err := <-sent:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled Send returned %v; want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled Send is still writing after 5s")
	}
	// What the consumer received goes; then a new frame gets through.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			f, err := consumer.Receive(ctx)
			if err != nil || string(f.Data) == "after" {
				return
			}
		}
	}()
	for {
		select {
		case <-drained:
			return
		case <-time.After(100 * time.Millisecond):
			if err := producer.Send(ctx, []byte("after")); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("nothing got through after the cancelled Send")
		}
	}
}
