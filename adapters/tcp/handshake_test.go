package tcp

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// The handshake's own tests and fuzz targets, on its two functions, with
// fixed nonces so that a recorded exchange replays.

var (
	testSecret = "handshake-test-secret-0123456789"
	testNonceD = nonce{'d', 'i', 'a', 'l', 'e', 'r', ' ', 'n', 'o', 'n', 'c', 'e', 0, 1, 2, 3}
	testNonceL = nonce{'l', 'i', 's', 't', 'e', 'n', 'e', 'r', ' ', 'n', 'o', 'n', 'c', 'e', 4, 5}
)

// servesOrders is the listener's decision for the tests: it serves the
// consumer end of stream "orders".
func servesOrders(h hello) string {
	switch {
	case h.stream != "orders":
		return fmt.Sprintf("no stream %q here", h.stream)
	case h.end != delivery.ProducerEnd:
		return "this side is the consumer end too"
	}
	return ""
}

// tap records what is written through a connection.
type tap struct {
	net.Conn
	sent bytes.Buffer
}

func (t *tap) Write(p []byte) (int, error) {
	t.sent.Write(p)
	return t.Conn.Write(p)
}

// exchange runs a whole handshake over a pipe: a dialer with dialSecret for
// stream and end against a listener with listenSecret that serves
// servesOrders. It returns what each side sent and how each ended.
func exchange(dialSecret, listenSecret, stream string, end delivery.End) (fromD, fromL []byte, dialErr, listenErr error) {
	d, l := net.Pipe()
	d.SetDeadline(time.Now().Add(5 * time.Second)) // a broken side must not hang the other
	l.SetDeadline(time.Now().Add(5 * time.Second))
	td, tl := &tap{Conn: d}, &tap{Conn: l}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer d.Close()
		dialErr = dialHandshake(td, dialSecret, stream, end, testNonceD)
	})
	wg.Go(func() {
		defer l.Close()
		_, listenErr = listenHandshake(tl, listenSecret, testNonceL, servesOrders)
	})
	wg.Wait()
	return td.sent.Bytes(), tl.sent.Bytes(), dialErr, listenErr
}

// TestHandshakeWire: the exchange as handshake.go lays it out, byte by
// byte, and in the listener's proof only after the dialer's.
func TestHandshakeWire(t *testing.T) {
	fromD, fromL, dialErr, listenErr := exchange(testSecret, testSecret, "orders", delivery.ProducerEnd)
	if dialErr != nil || listenErr != nil {
		t.Fatalf("the handshake failed: dialer %v, listener %v", dialErr, listenErr)
	}
	macD := mac(testSecret, labelDialer, testNonceD, testNonceL, delivery.ProducerEnd, "orders")
	macL := mac(testSecret, labelListener, testNonceD, testNonceL, delivery.ProducerEnd, "orders")
	wantD := append([]byte("BRTC\x02"), byte(delivery.ProducerEnd))
	wantD = append(wantD, testNonceD[:]...)
	wantD = append(wantD, 6)
	wantD = append(append(wantD, "orders"...), macD...)
	wantL := append(append([]byte{statusOK}, testNonceL[:]...), statusOK)
	wantL = append(wantL, macL...)
	if !bytes.Equal(fromD, wantD) {
		t.Errorf("the dialer sent\n% x\nwant\n% x", fromD, wantD)
	}
	if !bytes.Equal(fromL, wantL) {
		t.Errorf("the listener sent\n% x\nwant\n% x", fromL, wantL)
	}
	if hmac.Equal(macD, macL) {
		t.Error("the two proofs are equal: a proof could be reflected")
	}
	if other := mac(testSecret, labelDialer, testNonceD, testNonceL, delivery.ProducerEnd, "orderz"); hmac.Equal(other, macD) {
		t.Error("the proof does not bind the stream")
	}
}

// TestWrongProofRevealsNothing: a dialer with another secret, or none, gets
// the challenge and a refusal, byte for byte, and nothing the secret went
// into; so do an unknown stream and the wrong end, though only after a
// right proof.
func TestWrongProofRevealsNothing(t *testing.T) {
	challenge := append([]byte{statusOK}, testNonceL[:]...)
	refusal := func(reason string) []byte {
		return append(append(bytes.Clone(challenge), statusRefused, byte(len(reason))), reason...)
	}
	for _, c := range []struct {
		secret, stream string
		end            delivery.End
		want           []byte
	}{
		{"another-secret-0123456789", "orders", delivery.ProducerEnd, refusal(reasonWrongSecret)},
		{"", "orders", delivery.ProducerEnd, refusal(reasonWrongSecret)},
		{"another-secret-0123456789", "nope", delivery.ProducerEnd, refusal(reasonWrongSecret)},
		{testSecret, "nope", delivery.ProducerEnd, refusal(`no stream "nope" here`)},
		{testSecret, "orders", delivery.ConsumerEnd, refusal("this side is the consumer end too")},
	} {
		_, fromL, dialErr, listenErr := exchange(c.secret, testSecret, c.stream, c.end)
		if !bytes.Equal(fromL, c.want) {
			t.Errorf("%+v: the listener sent\n% x\nwant\n% x", c, fromL, c.want)
		}
		var re *RefusedError
		if !errors.As(dialErr, &re) || !errors.As(listenErr, &re) {
			t.Errorf("%+v: dialer %v, listener %v; want both refused", c, dialErr, listenErr)
		}
	}
}

// TestHandshakeVersions: each side of a version refuses a hello of
// another, naming both.
func TestHandshakeVersions(t *testing.T) {
	for _, v := range []byte{1, 3, 255} {
		var b bytes.Buffer
		writeHello(&b, hello{version: v, end: delivery.ProducerEnd, nonce: testNonceD, stream: "orders"})
		rw := &fakeConn{r: bytes.NewReader(b.Bytes())}
		_, err := listenHandshake(rw, testSecret, testNonceL, servesOrders)
		want := fmt.Sprintf("handshake version %d; this listener speaks version 2", v)
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("a hello of version %d: %v; want %q", v, err, want)
		}
		if rerr := readStatus(bytes.NewReader(rw.w.Bytes()), "orders"); !strings.Contains(fmt.Sprint(rerr), want) {
			t.Errorf("a hello of version %d: the dialer reads %v; want %q", v, rerr, want)
		}
	}
}

// TestThrottle: one warning per warnInterval passes, and the next says how
// many were held back.
func TestThrottle(t *testing.T) {
	var th throttle
	t0 := time.Now()
	if n, ok := th.allow(t0); !ok || n != 0 {
		t.Fatalf("the first warning: %d, %v", n, ok)
	}
	for i := range 5 {
		if _, ok := th.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("warning %d within the interval passed", i+2)
		}
	}
	if n, ok := th.allow(t0.Add(warnInterval)); !ok || n != 5 {
		t.Fatalf("the warning after the interval: %d, %v; want 5 held back", n, ok)
	}
	if n, ok := th.allow(t0.Add(2*warnInterval + time.Second)); !ok || n != 0 {
		t.Fatalf("a warning after a quiet interval: %d, %v", n, ok)
	}
}

// fakeConn is a connection that reads r and records what is written, and
// the longest read asked of it.
type fakeConn struct {
	r       io.Reader
	w       bytes.Buffer
	maxRead int
}

func (c *fakeConn) Read(p []byte) (int, error) {
	c.maxRead = max(c.maxRead, len(p))
	return c.r.Read(p)
}

func (c *fakeConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// seeds are what each side sends in real exchanges: a success, a wrong
// secret, an unknown stream, the wrong end, and a v1 dialer.
func seeds(f *testing.F, side func(fromD, fromL []byte) []byte) {
	for _, c := range []struct {
		secret, stream string
		end            delivery.End
	}{
		{testSecret, "orders", delivery.ProducerEnd},
		{"another-secret-0123456789", "orders", delivery.ProducerEnd},
		{testSecret, "nope", delivery.ProducerEnd},
		{testSecret, "orders", delivery.ConsumerEnd},
	} {
		fromD, fromL, _, _ := exchange(c.secret, testSecret, c.stream, c.end)
		f.Add(side(fromD, fromL))
	}
	var v1 bytes.Buffer
	writeHello(&v1, hello{version: 1, end: delivery.ProducerEnd, nonce: testNonceD, stream: "orders"})
	f.Add(side(v1.Bytes(), append([]byte{statusRefused, 3}, "old"...)))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
}

// maxHandshakeAlloc bounds what one handshake may allocate: a stream name,
// two HMACs, an error. A buffer sized from an unchecked length, or the
// frame buffers allocated early, would break it.
const maxHandshakeAlloc = 16 << 10

// bounded runs one side of the handshake on a connection that reads in,
// and fails t if it asked for more than maxRead bytes in one read or
// allocated more than maxHandshakeAlloc (counting what anything else
// allocated meanwhile: the fuzz worker is mostly idle). runtime.ReadMemStats
// stops the world, which slows the fuzzing, but it counts exactly, where
// runtime/metrics counts a cache's whole span at once.
func bounded(t *testing.T, in []byte, maxRead int, side func(io.ReadWriter)) *fakeConn {
	t.Helper()
	rw := &fakeConn{r: bytes.NewReader(in)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	side(rw)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > maxHandshakeAlloc {
		t.Fatalf("the handshake allocated %d bytes", n)
	}
	if rw.maxRead > maxRead {
		t.Fatalf("the handshake asked for %d bytes in one read", rw.maxRead)
	}
	return rw
}

// FuzzListenHandshake feeds the listener's side arbitrary bytes from a
// dialer: it must not panic, read or allocate more than the handshake's
// bounded fields, accept a dialer without a right proof, or send anything
// the secret went into unless it accepts.
func FuzzListenHandshake(f *testing.F) {
	seeds(f, func(fromD, _ []byte) []byte { return fromD })
	f.Fuzz(func(t *testing.T, in []byte) {
		var h hello
		var err error
		rw := bounded(t, in, maxStreamLen, func(rw io.ReadWriter) { h, err = listenHandshake(rw, testSecret, testNonceL, servesOrders) })
		out := rw.w.Bytes()
		macL := mac(testSecret, labelListener, h.nonce, testNonceL, h.end, h.stream)
		if err != nil {
			if bytes.Contains(out, macL) {
				t.Fatalf("the listener refused (%v) but sent its proof:\n% x", err, out)
			}
			if len(out) > 0 && out[0] == statusOK && !bytes.HasPrefix(out, append([]byte{statusOK}, testNonceL[:]...)) {
				t.Fatalf("the listener's challenge is not its nonce alone:\n% x", out)
			}
			return
		}
		end := helloHeadLen + len(h.stream)
		proof := in[end : end+macLen] // accepted: it read this far
		if !hmac.Equal(proof, mac(testSecret, labelDialer, testNonceD, testNonceL, delivery.ProducerEnd, "orders")) ||
			h.version != handshakeVersion || h.nonce != testNonceD || servesOrders(h) != "" {
			t.Fatalf("accepted %+v without a right proof: % x", h, in)
		}
	})
}

// FuzzDialHandshake feeds the dialer's side arbitrary bytes from a
// listener: it must not panic, read or allocate more than the handshake's
// bounded fields, or accept a listener without a right proof.
func FuzzDialHandshake(f *testing.F) {
	seeds(f, func(_, fromL []byte) []byte { return fromL })
	f.Fuzz(func(t *testing.T, in []byte) {
		var err error
		bounded(t, in, maxReasonLen, func(rw io.ReadWriter) {
			err = dialHandshake(rw, testSecret, "orders", delivery.ProducerEnd, testNonceD)
		})
		if err != nil {
			return
		}
		// Accepted: the input was a challenge and an OK with the proof over
		// its nonce, and the dialer sent its own proof in between.
		var nonceL nonce
		copy(nonceL[:], in[1:])
		want := mac(testSecret, labelListener, testNonceD, nonceL, delivery.ProducerEnd, "orders")
		if in[0] != statusOK || in[1+nonceLen] != statusOK || !hmac.Equal(in[2+nonceLen:2+nonceLen+macLen], want) {
			t.Fatalf("accepted a listener without a right proof: % x", in)
		}
	})
}
