package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bridge-mq/bridge/delivery"
)

// The raw tests use links directly, with no protocol: what the carrier
// itself promises.

// context4 is a test's context, bounded by the spec's Timeout.
func context4(t *testing.T, spec Spec) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout())
	t.Cleanup(cancel)
	return ctx
}

// open opens one end of stream through the carrier under test, and closes
// the link when the test ends.
func open(t *testing.T, ctx context.Context, spec Spec, stream string, end delivery.End) delivery.Link {
	t.Helper()
	l, err := spec.Carrier.OpenLink(ctx, stream, end)
	if err != nil {
		t.Fatalf("%s: open the %v end of %s: %v", spec.Name, end, stream, err)
	}
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

func frameSizes(spec Spec) func(int) int {
	limit := 64 << 10
	if spec.MaxFrameSize > 0 {
		limit = min(limit, spec.MaxFrameSize)
	}
	return func(i int) int { return 8 + (i*997)%(limit-8) }
}

// testRawFramesInOrder: frames from the producer end reach the consumer end
// whole and in order.
func testRawFramesInOrder(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	consumer := open(t, ctx, spec, s, delivery.ConsumerEnd)
	producer := open(t, ctx, spec, s, delivery.ProducerEnd)
	const n = 300
	sendFramesAside(t, ctx, producer, 0, n, frameSizes(spec))
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, consumer, n, true), n)
}

// testRawControlDirection: frames from the consumer end reach the producer
// end whole and in order.
func testRawControlDirection(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	producer := open(t, ctx, spec, s, delivery.ProducerEnd)
	consumer := open(t, ctx, spec, s, delivery.ConsumerEnd)
	const n = 300
	sendFramesAside(t, ctx, consumer, 0, n, SmallMessages)
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, producer, n, true), n)
}

// testQueue: frames sent while no consumer end is attached wait for one.
func testQueue(t *testing.T, spec Spec) {
	if !spec.Queue {
		t.Skipf("%s does not claim to queue frames for an absent consumer", spec.Name)
	}
	ctx := context4(t, spec)
	s := stream(t)
	producer := open(t, ctx, spec, s, delivery.ProducerEnd)
	mustSendFrames(t, ctx, producer, 0, 50, SmallMessages)
	consumer := open(t, ctx, spec, s, delivery.ConsumerEnd)
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, consumer, 50, true), 50)

	// And the protocol over it: a producer whose consumer comes late.
	s = stream(t)
	n := min(spec.messages(), 500)
	p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, 0, n, SmallMessages)
	consumerLink := open(t, ctx, spec, s, delivery.ConsumerEnd)
	cons := StartConsumer(t, ctx, consumerLink, FastConsumer)
	CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
	p.Stop(ctx)
	cons.Stop(ctx)
}

// testRelease: frames a consumer end received and did not release come back
// to the next consumer end; released ones do not.
func testRelease(t *testing.T, spec Spec) {
	if !spec.Release {
		t.Skipf("%s does not claim broker-level release", spec.Name)
	}
	ctx := context4(t, spec)
	s := stream(t)
	first := open(t, ctx, spec, s, delivery.ConsumerEnd)
	producer := open(t, ctx, spec, s, delivery.ProducerEnd)
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

	second := open(t, ctx, spec, s, delivery.ConsumerEnd)
	got := receiveFrames(t, ctx, second, 8, true)
	slices.Sort(got)
	if want := []int{2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("the next consumer end got %v; want the unreleased and the unread, %v", got, want)
	}
}

// testFrameTooLarge: a frame over the carrier's limit is refused with a
// *delivery.FrameTooLargeError naming its size and the limit, and the link
// carries on.
func testFrameTooLarge(t *testing.T, spec Spec) {
	if spec.MaxFrameSize <= 0 {
		t.Skipf("%s claims no frame limit", spec.Name)
	}
	ctx := context4(t, spec)
	s := stream(t)
	consumer := open(t, ctx, spec, s, delivery.ConsumerEnd)
	producer := open(t, ctx, spec, s, delivery.ProducerEnd)
	size := spec.MaxFrameSize + 1
	err := producer.Send(ctx, make([]byte, size))
	if !errors.Is(err, delivery.ErrFrameTooLarge) {
		t.Fatalf("a frame of %d bytes, over the limit of %d: %v; want an error wrapping delivery.ErrFrameTooLarge", size, spec.MaxFrameSize, err)
	}
	var tooLarge *delivery.FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != size || tooLarge.Limit != spec.MaxFrameSize {
		t.Fatalf("a frame of %d bytes, over the limit of %d: %v; want a *delivery.FrameTooLargeError with that Size and Limit", size, spec.MaxFrameSize, err)
	}
	t.Logf("refused: %v", err)
	if l, ok := producer.(delivery.FrameSizeLimiter); ok && l.MaxFrameSize() != spec.MaxFrameSize {
		t.Errorf("the link reports a limit of %d; the carrier claims %d", l.MaxFrameSize(), spec.MaxFrameSize)
	}
	mustSendFrames(t, ctx, producer, 0, 3, SmallMessages)
	CheckExactlyOnceInOrder(t, receiveFrames(t, ctx, consumer, 3, true), 3)
}
