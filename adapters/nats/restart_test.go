package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// TestServerRestart restarts the embedded server, on the same port, twice
// during a stream of 100,000 messages: the links reconnect by themselves,
// say so, and every message arrives once and in order. With a JetStream
// stream on file storage the stream and its consumer survive; on memory
// storage the carrier creates them again and the protocol resends what
// they held.
func TestServerRestart(t *testing.T) {
	cases := []struct {
		name    string
		mode    nats.Mode
		storage jetstream.StorageType
		n       int
	}{
		{"core", nats.ModeCore, 0, 100_000},
		{"jetstream", nats.ModeJetStream, jetstream.FileStorage, 100_000},
		{"jetstream-memory", nats.ModeJetStream, jetstream.MemoryStorage, 20_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := adaptertest.StartNATS(t, adaptertest.NATSOptions{})
			var logs adaptertest.Buffer
			cfg := testConfig(srv.URL(), tc.mode)
			cfg.Logger = logs.Logger()
			cfg.JetStream.Storage = tc.storage
			c := newCarrier(t, cfg)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			consumerLink := openLink(t, c, "restart", delivery.ConsumerEnd)
			producerLink := openLink(t, c, "restart", delivery.ProducerEnd)
			settings := adaptertest.FastConsumer
			settings.Window = 1000
			cons := adaptertest.StartConsumer(t, ctx, consumerLink, settings)
			p := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, tc.n, adaptertest.SmallMessages)

			// Each restart happens while the consumer application holds a
			// message: the producer has a window of messages in flight.
			restarts := 0
			got := cons.Take(ctx, func(i int, got []int) bool {
				if restarts < 2 && len(got) == (restarts+1)*tc.n/3 {
					restarts++
					if err := srv.Restart(ctx); err != nil {
						t.Fatal(err)
					}
				}
				return i == tc.n-1
			}, nil)
			adaptertest.CheckExactlyOnceInOrder(t, got, tc.n)
			p.Stop(ctx)
			cons.Stop(ctx)

			for _, l := range []*nats.Link{consumerLink, producerLink} {
				st := l.Status()
				t.Logf("%s: %+v %+v", l.End(), st, l.Stats())
				if st.Reconnects < 2 {
					t.Errorf("the %s link reports %d reconnects after 2 server restarts", l.End(), st.Reconnects)
				}
			}
			t.Logf("producer %+v", p.Stats())
			t.Logf("consumer %+v", cons.Stats())
			if n := strings.Count(logs.String(), "nats: reconnected"); n < 4 {
				t.Errorf("the log tells of %d reconnects of the two links, want at least 4:\n%s", n, logs.String())
			}
		})
	}
}
