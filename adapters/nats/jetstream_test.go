package nats_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// crashOnClose makes a consumer controller's end of the link go as a
// crashed process's would: nothing is nak'ed.
type crashOnClose struct{ *nats.Link }

func (l crashOnClose) Close() error {
	l.Abandon()
	return nil
}

// TestJetStreamConsumerReopen stops the consumer end mid-stream, holding
// frames it did not release, and starts a new one on the same stream. The
// broker delivers the unreleased frames again; the protocol drops what the
// new consumer already has, and together the two lifetimes see every
// message, each in order.
//
// closed: the consumer end closes, naking what it holds, so the frames
// come back at once, before the producer's resend.
// crashed: the consumer end vanishes without a word, so the frames come
// back only after AckWait, once the new consumer follows the producer
// again: they arrive as duplicates.
func TestJetStreamConsumerReopen(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	for _, crash := range []bool{false, true} {
		name := "closed"
		if crash {
			name = "crashed"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(srv.URL(), nats.ModeJetStream)
			cfg.JetStream.AckWait = time.Second
			c := newCarrier(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const n = 20_000
			stream := "reopen-" + name
			p := adaptertest.StartProducer(t, ctx, openLink(t, c, stream, delivery.ProducerEnd),
				adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)

			// The first consumer stops with the last of its messages
			// unconfirmed, so the frames that carried them are unreleased.
			first := openLink(t, c, stream, delivery.ConsumerEnd)
			var firstLink delivery.Link = first
			if crash {
				firstLink = crashOnClose{first}
			}
			cons := adaptertest.StartConsumer(t, ctx, firstLink, adaptertest.FastConsumer)
			const quota = n / 3
			lifetimes := [][]int{cons.Take(ctx,
				func(i int, _ []int) bool { return i >= quota+20 },
				func(i int, _ []int) bool { return i < quota })}
			cons.Kill()
			held := first.Stats()
			t.Logf("first consumer end: %+v", held)
			if !crash && held.Naked == 0 {
				t.Fatalf("the first consumer end nak'ed nothing at Close: %+v", held)
			}

			second := openLink(t, c, stream, delivery.ConsumerEnd)
			cons = adaptertest.StartConsumer(t, ctx, second, adaptertest.FastConsumer)
			lifetimes = append(lifetimes, cons.TakeUpTo(ctx, n-1))
			if crash {
				// The crashed end's frames come back after AckWait; if they
				// had not come by the time every message was delivered, they
				// must be dropped as duplicates when they do.
				before := cons.Stats().Duplicates
				early := second.Stats().Redelivered > 0
				eventually(t, 10*time.Second, "the broker redelivers the crashed consumer end's frames",
					func() bool { return second.Stats().Redelivered > 0 })
				if !early {
					eventually(t, 10*time.Second, "the redelivered frames are dropped as duplicates",
						func() bool { return cons.Stats().Duplicates > before })
				}
			}
			st := cons.Stats()
			lifetimes = append(lifetimes, cons.Stop(ctx))
			p.Stop(ctx)

			again := adaptertest.CheckLifetimes(t, lifetimes, n)
			t.Logf("second consumer end: %+v", second.Stats())
			t.Logf("second consumer: duplicates %d, foreign %d, late %d; %d messages delivered again to the application",
				st.Duplicates, st.Foreign, st.Late, again)
			if second.Stats().Redelivered == 0 {
				t.Errorf("the broker delivered no frame again to the second consumer end: %+v", second.Stats())
			}
			dropped := st.Duplicates + st.Foreign + st.Late
			if dropped == 0 {
				t.Errorf("the second consumer dropped nothing of the redelivered frames: %+v", st)
			}
			if crash && st.Duplicates == 0 {
				t.Errorf("the frames redelivered after AckWait were not dropped as duplicates: %+v", st)
			}
		})
	}
}

// TestJetStreamRepublish: publishes whose acks were lost when the server
// restarted are published again with the same Nats-Msg-Id, so the stream
// holds every frame Send took exactly once.
func TestJetStreamRepublish(t *testing.T) {
	srv := adaptertest.StartNATS(t, adaptertest.NATSOptions{})
	var logs adaptertest.Buffer
	cfg := testConfig(srv.URL(), nats.ModeJetStream)
	cfg.Logger = logs.Logger()
	c := newCarrier(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	producer := openLink(t, c, "republish", delivery.ProducerEnd)

	// Frames flow while the server restarts under them.
	sent := make(chan []int, 1)
	restarted := make(chan struct{})
	go func() {
		var ok []int
		after := -1
		for i := 0; after < 0 || i < after+200; i++ {
			if after < 0 {
				select {
				case <-restarted:
					after = i
				default:
				}
			}
			if err := producer.Send(ctx, adaptertest.Payload(i, 1024)); err == nil {
				ok = append(ok, i)
			}
		}
		sent <- ok
	}()
	eventually(t, 10*time.Second, "frames flow", func() bool { return producer.Stats().FramesSent > 500 })
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	close(restarted)
	ok := <-sent
	eventually(t, 20*time.Second, "every publish settles", func() bool {
		st := producer.Stats()
		return st.Republished > 0 && producer.Status().Connected && producer.PendingPublishes() == 0
	})
	st := producer.Stats()
	t.Logf("%d frames sent; producer end %+v", len(ok), st)
	if st.PublishFailures > 0 {
		t.Fatalf("%d publishes given up", st.PublishFailures)
	}

	if stored := storedFrames(t, cfg, "republish"); stored != uint64(len(ok)) {
		t.Fatalf("the stream holds %d frames; Send took %d", stored, len(ok))
	}

	consumer := openLink(t, c, "republish", delivery.ConsumerEnd)
	seen := map[int]bool{}
	for len(seen) < len(ok) {
		f, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(seen), len(ok), err)
		}
		i, err := adaptertest.Index(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		if seen[i] {
			t.Fatalf("frame %d delivered twice", i)
		}
		seen[i] = true
		f.Release()
	}
	for _, i := range ok {
		if !seen[i] {
			t.Fatalf("frame %d missing", i)
		}
	}
	if !strings.Contains(logs.String(), "publishing them again with the same Nats-Msg-Id") {
		t.Errorf("the republish is not in the log:\n%s", logs.String())
	}
}

// storedFrames is how many frames stream's JetStream stream holds.
func storedFrames(t *testing.T, cfg nats.Config, stream string) uint64 {
	t.Helper()
	nc, err := natsgo.Connect(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, cfg.JetStream.StreamPrefix+"_"+stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// TestStreamCreateWhileOthersDelete: links created while other streams are
// deleted on the same server. nats-server removes an account's emptied store
// directories in the background after a delete, which can pull them from
// under a create (error 10049); the carrier tries again rather than fail.
// (Found by the conformance suite's parallel streams on a loaded machine.)
func TestStreamCreateWhileOthersDelete(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	c := newCarrier(t, testConfig(srv.URL(), nats.ModeJetStream))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	// Two at a time, so the account is often left with no stream at all:
	// that is when the server removes its directories.
	for g := range 2 {
		wg.Go(func() {
			for i := range 150 {
				stream := fmt.Sprintf("race%d-%d-%s", g, i, runID)
				l, err := c.Link(ctx, stream, delivery.ConsumerEnd)
				if err != nil {
					errs <- err
					return
				}
				l.Close()
				if err := c.DeleteStream(ctx, stream); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
