package tcp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// TestCutsDuring100kStream cuts the TCP connection twenty times while
// 100,000 messages stream through: every message arrives once, in order,
// and the links count the reconnects.
func TestCutsDuring100kStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ln := listen(t, ctx)
	consumerLink, err := ln.Link("cuts", delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	producerLink, err := tcp.Dial(ctx, ln.Addr().String(), "cuts", delivery.ProducerEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}

	const n, cuts = 100_000, 20
	settings := adaptertest.FastConsumer
	settings.Window = 1000
	consumer := adaptertest.StartConsumer(t, ctx, consumerLink, settings)
	producer := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)
	done := 0
	got := consumer.Take(ctx, func(i int, got []int) bool {
		if done < cuts && len(got) == (done+1)*n/(cuts+1) {
			done++
			if done%2 == 0 {
				producerLink.Cut()
			} else {
				consumerLink.Cut()
			}
		}
		return i == n-1
	}, nil)
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	producer.Stop(ctx)
	consumer.Stop(ctx)
	reconnects := consumerLink.Status().Reconnects
	if reconnects < cuts || producerLink.Status().Reconnects < cuts {
		t.Errorf("after %d cuts the links count %d and %d reconnects", cuts, reconnects, producerLink.Status().Reconnects)
	}
	t.Logf("producer %+v", producer.Stats())
}

// TestWrongSecretRefused: a peer with the wrong secret, or none, is refused
// in the handshake, never connects, and never gets a frame in.
func TestWrongSecretRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln := listen(t, ctx)
	consumer, _ := ln.Link("guarded", delivery.ConsumerEnd)

	for _, secret := range []string{"wrong", ""} {
		cfg := testConfig
		cfg.Secret = secret
		intruder, err := tcp.Dial(ctx, ln.Addr().String(), "guarded", delivery.ProducerEnd, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The intruder's Send waits for a connection it never gets.
		short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
		err = intruder.Send(short, []byte("let me in"))
		cancelShort()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("secret %q: Send = %v; want it to wait for a connection that never comes", secret, err)
		}
		if st := intruder.Status(); st.Connected {
			t.Errorf("secret %q: the intruder is connected", secret)
		}
		intruder.Close()
	}
	if st := consumer.Status(); st.Connected {
		t.Error("the listening end accepted a connection")
	}

	// The right secret gets in, and its frame arrives first: nothing of the
	// intruders' did.
	friend, _ := tcp.Dial(ctx, ln.Addr().String(), "guarded", delivery.ProducerEnd, testConfig)
	defer friend.Close()
	if err := friend.Send(ctx, []byte("friend")); err != nil {
		t.Fatal(err)
	}
	f, err := consumer.Receive(ctx)
	if err != nil || string(f.Data) != "friend" {
		t.Fatalf("Receive = %q, %v", f.Data, err)
	}
}

// TestHandshakeRefusalsAreClear: what a refused dialer is told.
func TestHandshakeRefusalsAreClear(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln := listen(t, ctx)
	if _, err := ln.Link("s", delivery.ConsumerEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Link("s", delivery.ConsumerEnd); !errors.Is(err, tcp.ErrStreamInUse) {
		t.Errorf("a second link of the stream: %v", err)
	}
	for _, c := range []struct {
		stream, secret string
		end            delivery.End
		want           string
	}{
		{"s", "wrong", delivery.ProducerEnd, "listener does not know the secret"},
		{"nope", testConfig.Secret, delivery.ProducerEnd, `no stream "nope" here`},
		{"s", testConfig.Secret, delivery.ConsumerEnd, "consumer end too"},
	} {
		got := refusal(t, ctx, ln.Addr().String(), c.stream, c.secret, c.end)
		var re *tcp.RefusedError
		if !errors.As(got, &re) || !errors.Is(got, tcp.ErrRefused) || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%+v: refused with %v; want a *RefusedError saying %q", c, got, c.want)
		}
	}
}

// TestGarbageOnThePort: bytes that are not a handshake close that
// connection only; a stream in flight on the same listener carries on.
func TestGarbageOnThePort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln := listen(t, ctx)
	consumerLink, _ := ln.Link("busy", delivery.ConsumerEnd)
	producerLink, _ := tcp.Dial(ctx, ln.Addr().String(), "busy", delivery.ProducerEnd, testConfig)
	const n = 5000
	consumer := adaptertest.StartConsumer(t, ctx, consumerLink, adaptertest.FastConsumer)
	producer := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)

	closedByListener := 0
	got := consumer.Take(ctx, func(i int, got []int) bool {
		if len(got)%500 == 0 {
			junk := make([]byte, 1+len(got)%4000)
			rand.Read(junk)
			if garbage(t, ln.Addr().String(), junk) {
				closedByListener++
			}
		}
		return i == n-1
	}, nil)
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	producer.Stop(ctx)
	consumer.Stop(ctx)
	if closedByListener == 0 {
		t.Error("the listener kept no garbage connection from closing")
	}
	if r := consumerLink.Status().Reconnects; r != 0 {
		t.Errorf("the stream reconnected %d times: garbage disturbed it", r)
	}
}

// garbage writes junk to a fresh connection and reports whether the
// listener then closed it without answering.
func garbage(t *testing.T, addr string, junk []byte) bool {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(junk)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = nc.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// refusal dials with secret and end and returns the error the listener's
// refusal left on the link.
func refusal(t *testing.T, ctx context.Context, addr, stream, secret string, end delivery.End, base ...tcp.Config) error {
	t.Helper()
	cfg := testConfig
	if len(base) > 0 {
		cfg = base[0]
	}
	cfg.Secret = secret
	l, err := tcp.Dial(ctx, addr, stream, end, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for ctx.Err() == nil {
		if st := l.Status(); st.Err != nil {
			return st.Err
		}
		time.Sleep(5 * time.Millisecond) // no event tells of a refusal but the status
	}
	t.Fatal("no refusal reported")
	return nil
}

// listen opens a listener with testConfig on a free loopback port, closed
// at cleanup.
func listen(t *testing.T, ctx context.Context) *tcp.Listener {
	t.Helper()
	ln, err := tcp.Listen(ctx, "127.0.0.1:0", testConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
