package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// TestCarrier: each stream has a pipe of its own; a new link of an end
// replaces the previous; Close closes every link and Link fails after it.
func TestCarrier(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := memory.NewCarrier(memory.Options{Faults: memory.Faults{Loss: -1}}); err == nil {
		t.Error("a loss probability of -1 was accepted")
	}
	c, err := memory.NewCarrier(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	link := func(stream string, end delivery.End) *memory.Link {
		t.Helper()
		l, err := c.Link(ctx, stream, end)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if _, err := c.Link(ctx, "a", delivery.End(5)); err == nil {
		t.Error("an unknown end was accepted")
	}
	aOut, aIn, bIn := link("a", delivery.ProducerEnd), link("a", delivery.ConsumerEnd), link("b", delivery.ConsumerEnd)
	if err := aOut.Send(ctx, []byte("for a")); err != nil {
		t.Fatal(err)
	}
	if f, err := aIn.Receive(ctx); err != nil || string(f.Data) != "for a" {
		t.Fatalf("Receive on a = %q, %v", f.Data, err)
	}
	if st := c.Pipe("a").Stats(); st.Sent != 1 || st.Delivered != 1 {
		t.Errorf("stream a's pipe: %+v", st)
	}
	if st := c.Pipe("b").Stats(); st.Sent != 0 {
		t.Errorf("stream b's pipe saw a's frame: %+v", st)
	}

	again := link("a", delivery.ConsumerEnd)
	if _, err := aIn.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("the replaced consumer end: %v; want ErrLinkClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*memory.Link{aOut, again, bIn} {
		if _, err := l.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
			t.Errorf("a link after the carrier closed: %v; want ErrLinkClosed", err)
		}
	}
	if _, err := c.Link(ctx, "a", delivery.ProducerEnd); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("Link after Close: %v; want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
