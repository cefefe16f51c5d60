package adaptertest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/bridge-mq/bridge/delivery"
)

// The raw tests use links directly, with no protocol: what the carrier
// itself promises.

func context4(t *testing.T, c Carrier) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, c Carrier, stream string, end delivery.End) delivery.Link {
	t.Helper()
	l := c.Open(t, stream, end)
	t.Cleanup(func() { l.Close() })
	return l
}

// sendFrames sends payloads from..from+n-1 as one frame each.
func sendFrames(ctx context.Context, l delivery.Link, from, n int, size func(int) int) error {
	for i := from; i < from+n; i++ {
		if err := l.Send(ctx, Payload(i, size(i))); err != nil {
			return fmt.Errorf("send frame %d: %w", i, err)
		}
	}
	return nil
}

// sendFramesAside sends as sendFrames does, from another goroutine.
func sendFramesAside(t *testing.T, ctx context.Context, l delivery.Link, from, n int, size func(int) int) {
	go func() {
		if err := sendFrames(ctx, l, from, n, size); err != nil {
			t.Error(err)
		}
	}()
}

func mustSendFrames(t *testing.T, ctx context.Context, l delivery.Link, from, n int, size func(int) int) {
	t.Helper()
	if err := sendFrames(ctx, l, from, n, size); err != nil {
		t.Fatal(err)
	}
}

// receiveFrames receives n frames and returns their indexes; with release,
// it releases each.
func receiveFrames(t *testing.T, ctx context.Context, l delivery.Link, n int, release bool) []int {
	t.Helper()
	got := make([]int, 0, n)
	for range n {
		f, err := l.Receive(ctx)
		if err != nil {
			t.Fatalf("receive after %d frames: %v", len(got), err)
		}
		i, err := Index(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, i)
		if release && f.Release != nil {
			f.Release()
		}
	}
	return got
}

func frameSizes(c Carrier) func(int) int {
	limit := 64 << 10
	if c.MaxFrameSize > 0 {
		limit = min(limit, c.MaxFrameSize)
	}
	return func(i int) int { return 8 + (i*997)%(limit-8) }
}

// testRawFramesInOrder: frames from the producer end reach the consumer end
// whole and in order.
func testRawFramesInOrder(t *testing.T, c Carrier) {
	ctx := context4(t, c)
	s := stream(t)
	consumer := open(t, c, s, delivery.ConsumerEnd)
	producer := open(t, c, s, delivery.ProducerEnd)
	const n = 300
	sendFramesAside(t, ctx, producer, 0, n, frameSizes(c))
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, consumer, n, true), n)
}

// testRawControlDirection: frames from the consumer end reach the producer
// end whole and in order.
func testRawControlDirection(t *testing.T, c Carrier) {
	ctx := context4(t, c)
	s := stream(t)
	producer := open(t, c, s, delivery.ProducerEnd)
	consumer := open(t, c, s, delivery.ConsumerEnd)
	const n = 300
	sendFramesAside(t, ctx, consumer, 0, n, SmallMessages)
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, producer, n, true), n)
}

// testQueue: frames sent while no consumer end is attached wait for one.
func testQueue(t *testing.T, c Carrier) {
	if !c.Queue {
		t.Skipf("%s does not claim to queue frames for an absent consumer", c.Name)
	}
	ctx := context4(t, c)
	s := stream(t)
	producer := open(t, c, s, delivery.ProducerEnd)
	mustSendFrames(t, ctx, producer, 0, 50, SmallMessages)
	consumer := open(t, c, s, delivery.ConsumerEnd)
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, consumer, 50, true), 50)

	// And the protocol over it: a producer whose consumer comes late.
	s = stream(t)
	n := min(c.messages(), 500)
	p := StartProducer(t, ctx, open(t, c, s, delivery.ProducerEnd), FastProducer, 0, n, SmallMessages)
	consumerLink := open(t, c, s, delivery.ConsumerEnd)
	cons := StartConsumer(t, ctx, consumerLink, FastConsumer)
	CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
	p.Stop(ctx)
	cons.Stop(ctx)
}

// testRelease: frames a consumer end received and did not release come back
// to the next consumer end; released ones do not.
func testRelease(t *testing.T, c Carrier) {
	if !c.Release {
		t.Skipf("%s does not claim broker-level release", c.Name)
	}
	ctx := context4(t, c)
	s := stream(t)
	first := open(t, c, s, delivery.ConsumerEnd)
	producer := open(t, c, s, delivery.ProducerEnd)
	mustSendFrames(t, ctx, producer, 0, 10, SmallMessages)
	for i := range 5 {
		f, err := first.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Release == nil {
			t.Fatalf("frame %d carries no Release", i)
		}
		if i < 2 {
			f.Release()
		}
	}
	first.Close()

	second := open(t, c, s, delivery.ConsumerEnd)
	got := receiveFrames(t, ctx, second, 8, true)
	slices.Sort(got)
	if want := []int{2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("the next consumer end got %v; want the unreleased and the unread, %v", got, want)
	}
}

// testFrameTooLarge: a frame over the carrier's limit is refused with an
// error, and the link carries on.
func testFrameTooLarge(t *testing.T, c Carrier) {
	if c.MaxFrameSize <= 0 {
		t.Skipf("%s claims no frame limit", c.Name)
	}
	ctx := context4(t, c)
	s := stream(t)
	consumer := open(t, c, s, delivery.ConsumerEnd)
	producer := open(t, c, s, delivery.ProducerEnd)
	err := producer.Send(ctx, make([]byte, c.MaxFrameSize+1))
	if err == nil {
		t.Fatalf("a frame of %d bytes, over the limit of %d, was accepted", c.MaxFrameSize+1, c.MaxFrameSize)
	}
	t.Logf("refused: %v", err)
	if l, ok := producer.(delivery.FrameSizeLimiter); ok && l.MaxFrameSize() != c.MaxFrameSize {
		t.Errorf("the link reports a limit of %d; the carrier claims %d", l.MaxFrameSize(), c.MaxFrameSize)
	}
	mustSendFrames(t, ctx, producer, 0, 3, SmallMessages)
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, consumer, 3, true), 3)
}
