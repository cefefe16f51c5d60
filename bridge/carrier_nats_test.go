package bridge

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
)

// testToken is the embedded servers' token in these tests.
const testToken = "0123456789abcdef0123456789abcdef"

// TestEmbeddedNATSOneServerPerStore: two bridges started at once with the
// same embedded address and store directory end up on one server, and its
// JetStream works; a second server must never run on the same store. (Two
// servers on one store stopped acking publishes: the e2e test's producer
// waited minutes for acks on a loaded machine.)
func TestEmbeddedNATSOneServerPerStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := adaptertest.FreeAddr(t)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)

	var mu sync.Mutex
	var started, stops []func()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, stop, err := embeddedNATS(ctx, addr, dir, testToken, log)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if s != nil {
				started = append(started, stop)
			}
			if stop != nil {
				stops = append(stops, stop)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if len(started) != 1 {
		t.Fatalf("%d servers started on one store; want 1", len(started))
	}

	nc, err := natsgo.Connect("nats://"+addr, natsgo.Token(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "once", Subjects: []string{"once"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := js.Publish(ctx, "once", []byte{byte(i)}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// TestEmbeddedNATSWaitsForStoreHolder: while another holder has the store
// directory locked, a bridge starts no server on it, even with the address
// free; it waits for the holder's server and says why when none comes.
// Once the lock is let go, the next bridge starts the server.
func TestEmbeddedNATSWaitsForStoreHolder(t *testing.T) {
	addr := adaptertest.FreeAddr(t)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)

	unlock, held, err := lockStore(dir)
	if err != nil || !held {
		t.Fatalf("lockStore on a fresh directory: held %v, %v", held, err)
	}
	if _, again, err := lockStore(dir); err != nil || again {
		t.Fatalf("lockStore while held: held %v, %v; want refused", again, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	s, stop, err := embeddedNATS(ctx, addr, dir, testToken, log)
	cancel()
	if s != nil {
		stop()
		t.Fatal("a server started on a store another holder has locked")
	}
	if err == nil || !strings.Contains(err.Error(), "is locked by another process") {
		t.Fatalf("err = %v; want one saying the store is locked", err)
	}
	if serving(addr) {
		t.Fatalf("something serves at %s", addr)
	}

	unlock()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, stop, err = embeddedNATS(ctx, addr, dir, testToken, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if s == nil || !serving(addr) {
		t.Fatalf("no server started once the store was free (server %v)", s)
	}
}
