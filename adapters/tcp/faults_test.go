package tcp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
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

	for _, secret := range []string{"a-wrong-secret-0123456789", ""} {
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
		} else if !errors.Is(st.Err, tcp.ErrRefused) || !strings.Contains(st.Err.Error(), "wrong secret") {
			t.Errorf("secret %q: the intruder was told %v; want a refusal for the wrong secret", secret, st.Err)
		}
		intruder.Close()
	}
	if st := consumer.Status(); st.Connected {
		t.Error("the listening end accepted a connection")
	}
	if st := ln.Stats(); st.Refused < 2 || st.Connected != 0 {
		t.Errorf("the listener's counts after two intruders: %+v; want them refused, none connected", st)
	}

	// The right secret gets in, and its frame arrives first: nothing of the
	// intruders' did.
	friend, _ := tcp.Dial(ctx, ln.Addr().String(), "guarded", delivery.ProducerEnd, testConfig)
	defer friend.Close()
	sendOne(t, ctx, friend, consumer, "friend")
	if st := ln.Stats(); st.Connected != 1 {
		t.Errorf("the listener's counts after the friend: %+v; want one connected", st)
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
		{"s", "a-wrong-secret-0123456789", delivery.ProducerEnd, "wrong secret"},
		{"nope", testConfig.Secret, delivery.ProducerEnd, `no stream "nope" here`},
		{"s", testConfig.Secret, delivery.ConsumerEnd, "consumer end too"},
	} {
		got := refusal(t, ctx, ln.Addr().String(), c.stream, c.secret, c.end)
		var re *tcp.RefusedError
		if !errors.As(got, &re) || !errors.Is(got, tcp.ErrRefused) || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%+v: refused with %v; want a *RefusedError saying %q", c, got, c.want)
		}
	}

	// A listener that does not know the secret cannot make its proof: the
	// dialer hangs up before any frame.
	impostor := impostorListener(t)
	got := refusal(t, ctx, impostor, "s", testConfig.Secret, delivery.ProducerEnd)
	var re *tcp.RefusedError
	if !errors.As(got, &re) || !strings.Contains(got.Error(), "listener does not know the secret") {
		t.Errorf("a dialer facing an impostor: %v; want a *RefusedError saying the listener does not know the secret", got)
	}

	// A dialer of the old handshake (version 1, the listener proving
	// first) is told both versions.
	if reason := oldDialer(t, ln.Addr().String(), "s"); !strings.Contains(reason, "handshake version 1; this listener speaks version 2") {
		t.Errorf("an old dialer was told %q; want both versions named", reason)
	}
}

// impostorListener listens on a free port and plays the listener's side
// of every handshake without knowing the secret: it sends a challenge,
// takes any proof, and answers OK with a made-up proof of its own. It
// returns its address.
func impostorListener(t *testing.T) string {
	t.Helper()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { nl.Close(); <-done })
	go func() {
		defer close(done)
		for {
			nc, err := nl.Accept()
			if err != nil {
				return
			}
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			head := make([]byte, 23) // "BRTC" version end nonce(16) len
			if _, err := io.ReadFull(nc, head); err == nil {
				io.ReadFull(nc, make([]byte, head[22]))
				challenge := append([]byte{0}, make([]byte, 16)...)
				rand.Read(challenge[1:])
				nc.Write(challenge)
				if _, err := io.ReadFull(nc, make([]byte, 32)); err == nil {
					proof := append([]byte{0}, make([]byte, 32)...)
					rand.Read(proof[1:])
					nc.Write(proof)
				}
			}
			nc.Close()
		}
	}()
	return nl.Addr().String()
}

// oldDialer opens a handshake of version 1 for stream and returns the
// listener's reason for refusing it.
func oldDialer(t *testing.T, addr, stream string) string {
	t.Helper()
	nc := rawConn(t, addr)
	defer nc.Close()
	hello := append([]byte("BRTC\x01"), byte(delivery.ProducerEnd))
	hello = append(hello, make([]byte, 16)...)
	hello = append(hello, byte(len(stream)))
	if _, err := nc.Write(append(hello, stream...)); err != nil {
		t.Fatal(err)
	}
	status := make([]byte, 2)
	if _, err := io.ReadFull(nc, status); err != nil || status[0] != 1 {
		t.Fatalf("the answer to an old hello: % x, %v; want a refusal", status, err)
	}
	reason := make([]byte, status[1])
	if _, err := io.ReadFull(nc, reason); err != nil {
		t.Fatal(err)
	}
	return string(reason)
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
	nc := rawConn(t, addr)
	defer nc.Close()
	nc.Write(junk)
	_, err := nc.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// rawConn dials addr with no handshake, for a test to speak bytes of its
// own; it gives up on either direction after 10 s.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
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

// listen opens a listener with testConfig, or base if given, on a free
// loopback port, closed at cleanup.
func listen(t *testing.T, ctx context.Context, base ...tcp.Config) *tcp.Listener {
	t.Helper()
	cfg := testConfig
	if len(base) > 0 {
		cfg = base[0]
	}
	ln, err := tcp.Listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestSilentConnectionsCostLittle: 2,000 connections that never say a
// word, from four other addresses, cost the listener a goroutine and a
// little memory for each of the few it lets into their handshake, and none
// for the others, which it closes at once and counts; a real dialer
// connects and streams meanwhile.
func TestSilentConnectionsCostLittle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig
	cfg.HandshakeTimeout = time.Minute // the silent ones stay in their handshakes throughout
	ln := listen(t, ctx, cfg)
	consumerLink, _ := ln.Link("busy", delivery.ConsumerEnd)

	const n, hosts = 2000, 4
	goroutines, mem := runtime.NumGoroutine(), memInUse()
	silent(t, ln.Addr().String(), n, hosts)
	st := waitAccounted(t, ctx, ln, n)
	grown := int64(memInUse()) - int64(mem)
	more := runtime.NumGoroutine() - goroutines
	t.Logf("%d silent connections: %+v; %d more goroutines, heap and stacks grown %.1f MiB", n, st, more, float64(grown)/(1<<20))
	admitted := hosts * tcp.DefaultMaxHandshakesPerHost
	if st.Handshaking != admitted || st.OverHostCap != n-uint64(admitted) {
		t.Errorf("%d silent connections from %d addresses: %+v; want %d in their handshake and the rest over the per-host cap",
			n, hosts, st, admitted)
	}
	if more > tcp.DefaultMaxHandshakes+4 {
		t.Errorf("%d silent connections cost %d goroutines; want at most MaxHandshakes (%d) and a few", n, more, tcp.DefaultMaxHandshakes)
	}
	if grown > 32<<20 {
		t.Errorf("%d silent connections grew the heap and stacks by %d bytes; want less than 32 MiB", n, grown)
	}

	// A real dialer, from another address, connects and streams while they
	// are all still open and those let in still in their handshakes.
	producerLink, err := tcp.Dial(ctx, ln.Addr().String(), "busy", delivery.ProducerEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	const messages = 2000
	consumer := adaptertest.StartConsumer(t, ctx, consumerLink, adaptertest.FastConsumer)
	producer := adaptertest.StartProducer(t, ctx, producerLink, adaptertest.FastProducer, 0, messages, adaptertest.SmallMessages)
	got := consumer.Take(ctx, func(i int, _ []int) bool { return i == messages-1 }, nil)
	adaptertest.CheckExactlyOnceInOrder(t, got, messages)
	producer.Stop(ctx)
	consumer.Stop(ctx)
	if st := ln.Stats(); st.Handshaking != admitted || st.Connected != 1 {
		t.Errorf("after the stream: %+v; want the silent ones still in their handshakes, and the dialer connected once", st)
	}

	// Close does not wait for the handshakes to time out.
	start := time.Now()
	ln.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with %d connections in their handshake", d, admitted)
	}
}

// TestHandshakeCap: beyond MaxHandshakes connections in their handshake,
// from any number of addresses, the next ones are closed at once, counted,
// and warned of once in the interval; a real dialer gets in once the
// silent ones time out.
func TestHandshakeCap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs adaptertest.Buffer
	cfg := testConfig
	cfg.MaxHandshakes = 16
	cfg.HandshakeTimeout = 3 * time.Second
	cfg.Logger = logs.Logger()
	ln := listen(t, ctx, cfg)
	consumer, _ := ln.Link("s", delivery.ConsumerEnd)

	const n, hosts = 300, 6 // 6 addresses could fill 48 handshakes but for MaxHandshakes
	silent(t, ln.Addr().String(), n, hosts)
	st := waitAccounted(t, ctx, ln, n)
	if st.Handshaking != cfg.MaxHandshakes || st.OverCap != n-uint64(cfg.MaxHandshakes) {
		t.Errorf("%d silent connections: %+v; want MaxHandshakes (%d) in their handshake and the rest over the cap", n, st, cfg.MaxHandshakes)
	}

	producer, err := tcp.Dial(ctx, ln.Addr().String(), "s", delivery.ProducerEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	sendOne(t, ctx, producer, consumer, "let in")
	st = ln.Stats()
	if st.Failed < uint64(cfg.MaxHandshakes) || st.OverCap <= n-uint64(cfg.MaxHandshakes) || st.Connected != 1 {
		t.Errorf("after the dialer got in: %+v; want the silent ones timed out, the dialer's attempts over the cap counted too", st)
	}
	for _, c := range []struct{ msg, says string }{
		{"MaxHandshakes connections are in their handshake", "max_handshakes=16"},
		{"did not complete the handshake", "HandshakeTimeout"},
	} {
		lines := strings.Count(logs.String(), c.msg)
		if line := logLine(logs.String(), c.msg); lines != 1 || !strings.Contains(line, c.says) || !strings.Contains(line, "suppressed=0") {
			t.Errorf("%d lines say %q (the first: %q); want one in the interval, saying %s", lines, c.msg, line, c.says)
		}
	}
}

// silent opens n connections to addr that never send a byte, from hosts
// loopback addresses (127.0.0.2 on) in turn, each dialed within a short
// deadline; they stay open until the test ends. Loopback addresses other
// than 127.0.0.1 need Linux: elsewhere the test is skipped.
func silent(t *testing.T, addr string, n, hosts int) {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
	})
	for i := range n {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%hosts))}}
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			if i < hosts {
				t.Skipf("cannot dial from %v: %v", d.LocalAddr, err)
			}
			t.Fatalf("silent connection %d: %v", i, err)
		}
		conns = append(conns, nc)
	}
}

// waitAccounted waits until the listener has accepted n connections and
// each is in its handshake or closed, and returns its counts.
func waitAccounted(t *testing.T, ctx context.Context, ln *tcp.Listener, n uint64) tcp.ListenerStats {
	t.Helper()
	var st tcp.ListenerStats
	waitFor(t, ctx, "every connection accepted", func() bool {
		st = ln.Stats()
		return st.Accepted >= n
	})
	if sum := uint64(st.Handshaking) + st.Connected + st.Refused + st.Failed + st.TLSFailed + st.OverCap + st.OverHostCap; sum != st.Accepted {
		t.Errorf("the counts do not add up to Accepted: %+v", st)
	}
	return st
}

// memInUse returns the bytes of heap and goroutine stacks in use after a
// collection.
func memInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
