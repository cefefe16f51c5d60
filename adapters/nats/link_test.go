package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// TestSlowConsumerIsReported: a consumer end whose Receive falls far behind
// loses frames to the client's pending limits, and the loss shows in the
// log and in the link's counters rather than passing in silence.
func TestSlowConsumerIsReported(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	var logs adaptertest.Buffer
	cfg := testConfig(srv.URL(), nats.ModeCore)
	cfg.Logger = logs.Logger()
	c := newCarrier(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	consumer := openLink(t, c, "slow", delivery.ConsumerEnd)
	producer := openLink(t, c, "slow", delivery.ProducerEnd)

	// Nobody receives: the link's inbox fills, then the subscription's
	// pending queue (64 MiB), then the client drops.
	frame := make([]byte, consumer.MaxFrameSize())
	for i := 0; consumer.Stats().SlowConsumerEvents == 0; i++ {
		if i == 400 {
			t.Fatalf("400 MiB sent to a consumer end that receives nothing, and no slow consumer reported: %+v", consumer.Stats())
		}
		if err := producer.Send(ctx, frame); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the slow consumer's drops are counted", func() bool {
		return consumer.Stats().SlowConsumerDrops > 0
	})
	if !strings.Contains(logs.String(), "slow consumer") {
		t.Errorf("no slow consumer in the log:\n%s", logs.String())
	}
	t.Logf("consumer end: %+v", consumer.Stats())

	// The link still works.
	if _, err := consumer.Receive(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestClosedLink: Send and Receive on a closed link fail with
// delivery.ErrLinkClosed; a Receive waiting when Close comes returns.
func TestClosedLink(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	for _, mode := range []nats.Mode{nats.ModeCore, nats.ModeJetStream} {
		t.Run(string(mode), func(t *testing.T) {
			c := newCarrier(t, testConfig(srv.URL(), mode))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, end := range []delivery.End{delivery.ProducerEnd, delivery.ConsumerEnd} {
				l := openLink(t, c, "closed-"+end.String(), end)
				received := make(chan error, 1)
				go func() {
					_, err := l.Receive(ctx)
					received <- err
				}()
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if err := <-received; !errors.Is(err, delivery.ErrLinkClosed) {
					t.Errorf("%s: a waiting Receive returned %v at Close; want delivery.ErrLinkClosed", end, err)
				}
				if _, err := l.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
					t.Errorf("%s: Receive after Close: %v", end, err)
				}
				if err := l.Send(ctx, []byte("frame")); !errors.Is(err, delivery.ErrLinkClosed) {
					t.Errorf("%s: Send after Close: %v", end, err)
				}
				if st := l.Status(); st.Connected || !errors.Is(st.Err, delivery.ErrLinkClosed) {
					t.Errorf("%s: status after Close: %+v", end, st)
				}
				if err := l.Close(); err != nil {
					t.Errorf("%s: second Close: %v", end, err)
				}
			}
			c.Close()
			if _, err := c.Link(ctx, "after", delivery.ProducerEnd); !errors.Is(err, nats.ErrClosed) {
				t.Errorf("Link on a closed carrier: %v; want nats.ErrClosed", err)
			}
		})
	}
}

// TestReopenReplaces: opening an end of a stream again closes the previous
// link of that end, as a restarted process would replace it.
func TestReopenReplaces(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	c := newCarrier(t, testConfig(srv.URL(), nats.ModeCore))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := openLink(t, c, "replace", delivery.ConsumerEnd)
	fresh := openLink(t, c, "replace", delivery.ConsumerEnd)
	if _, err := old.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
		t.Errorf("the replaced link still receives: %v", err)
	}
	producer := openLink(t, c, "replace", delivery.ProducerEnd)
	if err := producer.Send(ctx, adaptertest.Payload(7, 16)); err != nil {
		t.Fatal(err)
	}
	f, err := fresh.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i, err := adaptertest.Index(f.Data); err != nil || i != 7 {
		t.Errorf("received message %d, %v; want 7", i, err)
	}
}

// TestSmallMaxPayload: on a server with a 64 KiB max_payload the links
// report the smaller limit, refuse frames over it, and the protocol's
// chunks keep a 1 MiB message under it.
func TestSmallMaxPayload(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{MaxPayload: 64 << 10})
	for _, mode := range []nats.Mode{nats.ModeCore, nats.ModeJetStream} {
		t.Run(string(mode), func(t *testing.T) {
			c := newCarrier(t, testConfig(srv.URL(), mode))
			want := 64 << 10
			if mode == nats.ModeJetStream {
				want -= 128
			}
			if got := c.MaxFrameSize(); got != want {
				t.Fatalf("MaxFrameSize %d; want %d", got, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			consumerLink := openLink(t, c, "small", delivery.ConsumerEnd)
			producerLink := openLink(t, c, "small", delivery.ProducerEnd)
			var tooLarge *delivery.FrameTooLargeError
			if err := producerLink.Send(ctx, make([]byte, want+1)); !errors.As(err, &tooLarge) || !errors.Is(err, delivery.ErrFrameTooLarge) ||
				tooLarge.Limit != want || tooLarge.Carrier != "nats" {
				t.Fatalf("a frame over the limit: %v", err)
			}
			// A frame of exactly the limit goes, headers and all.
			if err := producerLink.Send(ctx, adaptertest.Payload(0, want)); err != nil {
				t.Fatalf("a frame of exactly the limit: %v", err)
			}
			if f, err := consumerLink.Receive(ctx); err != nil || len(f.Data) != want {
				t.Fatalf("a frame of exactly the limit: %d bytes received, %v", len(f.Data), err)
			} else if f.Release != nil {
				f.Release()
			}

			sizes := []int{1 << 20, 100, 200 << 10}
			cons := adaptertest.StartConsumer(t, ctx, consumerLink, adaptertest.FastConsumer)
			p := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, len(sizes),
				func(i int) int { return sizes[i] })
			adaptertest.CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, len(sizes)-1), len(sizes))
			p.Stop(ctx)
			cons.Stop(ctx)
		})
	}
}
