package memory_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// fates sends n numbered frames through a pipe with the given faults, one
// at a time, and returns what came out, in order.
func fates(t *testing.T, faults memory.Faults, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pipe, err := memory.NewPipe(memory.Options{Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	out, in := pipe.Producer(), pipe.Consumer()
	for i := range n {
		if err := out.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	st := pipe.Stats()
	for range st.Sent - st.Dropped + st.Duplicated {
		f, err := in.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Data[0])
	}
	return got
}

// TestSeedReplays: the same seed gives every frame the same fate; another
// seed does not.
func TestSeedReplays(t *testing.T) {
	faults := memory.Faults{Seed: 42, Loss: 0.2, Duplicate: 0.2, Reorder: 0.2}
	a, b := fates(t, faults, 200), fates(t, faults, 200)
	if !slices.Equal(a, b) {
		t.Fatalf("the same seed gave different runs:\n%v\n%v", a, b)
	}
	faults.Seed = 43
	if c := fates(t, faults, 200); slices.Equal(a, c) {
		t.Fatal("another seed gave the same run")
	}
	inOrder := true
	for i := 1; i < len(a); i++ {
		inOrder = inOrder && a[i] > a[i-1]
	}
	if len(a) == 200 || inOrder {
		t.Errorf("no fault showed in %v", a)
	}
}

// TestQueueRedelivers: on a Queue pipe, frames an end received and did not
// release come back to the next end, and frames wait for an end to attach.
func TestQueueRedelivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{Queue: true})
	out := pipe.Producer()
	for i := range 3 {
		if err := out.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	first := pipe.Consumer()
	f0, _ := first.Receive(ctx)
	f1, _ := first.Receive(ctx)
	f0.Release()
	first.Close()

	second := pipe.Consumer()
	var got []byte
	for range 2 {
		f, err := second.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Data[0])
		f.Release()
	}
	if !slices.Equal(got, []byte{1, 2}) || f1.Data[0] != 1 {
		t.Fatalf("second end got %v; want the unreleased 1, then 2", got)
	}
	if st := pipe.Stats(); st.Redelivered != 1 || st.Released != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestCut: a cut pipe refuses sends and loses what was in flight; a Queue
// pipe keeps its queue through the cut.
func TestCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, queue := range []bool{false, true} {
		pipe, _ := memory.NewPipe(memory.Options{Queue: queue})
		out, in := pipe.Producer(), pipe.Consumer()
		out.Send(ctx, []byte("in flight"))
		pipe.Cut()
		if err := out.Send(ctx, []byte("x")); !errors.Is(err, memory.ErrDisconnected) {
			t.Errorf("queue=%v: Send while cut = %v", queue, err)
		}
		pipe.Restore()
		out.Send(ctx, []byte("after"))
		f, err := in.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := "after"
		if queue {
			want = "in flight"
		}
		if string(f.Data) != want {
			t.Errorf("queue=%v: first frame after the cut is %q; want %q", queue, f.Data, want)
		}
	}
}

func TestFrameLimitAndClose(t *testing.T) {
	ctx := context.Background()
	pipe, _ := memory.NewPipe(memory.Options{MaxFrameSize: 10})
	out := pipe.Producer()
	var tooLarge *delivery.FrameTooLargeError
	if err := out.Send(ctx, make([]byte, 11)); !errors.As(err, &tooLarge) || !errors.Is(err, delivery.ErrFrameTooLarge) ||
		tooLarge.Carrier != "memory" || tooLarge.Size != 11 || tooLarge.Limit != 10 {
		t.Errorf("Send of 11 bytes = %v", err)
	}
	if out.MaxFrameSize() != 10 {
		t.Errorf("MaxFrameSize = %d", out.MaxFrameSize())
	}
	in := pipe.Consumer()
	in.Close()
	if _, err := in.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("Receive after Close = %v", err)
	}
	if _, err := memory.NewPipe(memory.Options{Faults: memory.Faults{Loss: 2}}); err == nil {
		t.Error("a loss probability of 2 was accepted")
	}
}
