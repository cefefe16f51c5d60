package tcp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// TestNewChecksWithoutIO: New refuses a bad address, end or Config, and
// binds nothing: a taken port is the first listening Link's error.
func TestNewChecksWithoutIO(t *testing.T) {
	for _, c := range []struct {
		addr string
		end  delivery.End
		cfg  tcp.Config
	}{
		{"no port", delivery.ConsumerEnd, testConfig},
		{"127.0.0.1:0", delivery.End(7), testConfig},
		{"127.0.0.1:0", delivery.ConsumerEnd, tcp.Config{MaxFrameSize: -1}},
	} {
		if _, err := tcp.New(c.addr, c.end, c.cfg); err == nil {
			t.Errorf("New(%q, %v, %+v) succeeded", c.addr, c.end, c.cfg)
		}
	}
	var ce *tcp.ConfigError
	if _, err := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, tcp.Config{Keepalive: time.Second, IdleTimeout: time.Second}); !errors.As(err, &ce) || ce.Field != "IdleTimeout" {
		t.Errorf("a bad IdleTimeout: %v; want a *ConfigError for it", err)
	}
	for _, cfg := range []tcp.Config{{MaxHandshakes: -1}, {MaxHandshakesPerHost: -1}} {
		if _, err := tcp.Listen(context.Background(), "127.0.0.1:0", cfg); !errors.As(err, &ce) || !strings.HasPrefix(ce.Field, "MaxHandshakes") {
			t.Errorf("Listen with %+v: %v; want a *ConfigError for it", cfg, err)
		}
	}

	// A secret shorter than MinSecretLen is refused by every constructor,
	// and the error does not print it; an empty one (no secret) and one of
	// MinSecretLen bytes are fine.
	short := strings.Repeat("k", tcp.MinSecretLen-1)
	for name, err := range map[string]error{
		"New":    second(tcp.New("127.0.0.1:0", delivery.ConsumerEnd, tcp.Config{Secret: short})),
		"Listen": second(tcp.Listen(context.Background(), "127.0.0.1:0", tcp.Config{Secret: short})),
		"Dial":   second(tcp.Dial(context.Background(), "127.0.0.1:1", "s", delivery.ProducerEnd, tcp.Config{Secret: short})),
	} {
		if !errors.As(err, &ce) || ce.Field != "Secret" || !strings.Contains(err.Error(), "at least 16 bytes") || strings.Contains(err.Error(), short) {
			t.Errorf("%s with a %d-byte secret: %v; want a *ConfigError for Secret saying at least 16 bytes, without the secret", name, len(short), err)
		}
	}
	for _, secret := range []string{"", short + "k"} {
		c, err := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, tcp.Config{Secret: secret})
		if err != nil {
			t.Errorf("New with a %d-byte secret: %v", len(secret), err)
			continue
		}
		c.Close()
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c, err := tcp.New(taken.Addr().String(), delivery.ConsumerEnd, testConfig)
	if err != nil {
		t.Fatalf("New on a taken port: %v; it must not bind", err)
	}
	defer c.Close()
	if _, err := c.Link(context.Background(), "s", delivery.ConsumerEnd); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("the listening end on a taken port: %v; want the Listen error", err)
	}
	if c.Addr() != taken.Addr().String() {
		t.Errorf("Addr() = %s before listening; want the configured %s", c.Addr(), taken.Addr())
	}
}

// TestTwoCarriers: two processes' carriers, one listening on a fixed
// address, the other dialing it, carry a stream; each reports its status.
func TestTwoCarriers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := adaptertest.FreeAddr(t)
	consumerSide, err := tcp.New(addr, delivery.ConsumerEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer consumerSide.Close()
	producerSide, err := tcp.New(addr, delivery.ConsumerEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer producerSide.Close()

	// The producer side dials before anything listens, and gets through
	// once the consumer side's listener is up.
	producer, err := producerSide.Link(ctx, "orders", delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	if st := producerSide.Status(); st.Connected {
		t.Errorf("the producer side is connected with nothing listening: %+v", st)
	}
	consumer, err := consumerSide.Link(ctx, "orders", delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	if consumerSide.Addr() != addr || producerSide.Addr() != addr {
		t.Errorf("Addr() = %s and %s; want %s", consumerSide.Addr(), producerSide.Addr(), addr)
	}
	sendOne(t, ctx, producer, consumer, "hello")
	waitConnected(t, ctx, producerSide, consumerSide)

	producer.Cut()
	waitFor(t, ctx, "the cut counted as a reconnect on both sides", func() bool {
		return producerSide.Status().Reconnects >= 1 && consumerSide.Status().Reconnects >= 1
	})
	waitConnected(t, ctx, producerSide, consumerSide)

	// A link closed keeps its reconnects in the carrier's count.
	producer.Close()
	if st := producerSide.Status(); !st.Connected || st.Reconnects < 1 {
		t.Errorf("the producer side after its only link closed: %+v; want connected, its reconnect still counted", st)
	}
}

// TestCarrierBothEndsOnPortZero: with port 0 the dialing end, opened
// first, starts the listener, and dials its real port.
func TestCarrierBothEndsOnPortZero(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs adaptertest.Buffer
	cfg := testConfig
	cfg.Logger = logs.Logger()
	c, err := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	producer, err := c.Link(ctx, "s", delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(c.Addr(), ":0") {
		t.Fatalf("Addr() = %s after a dialing Link; want the listener's port", c.Addr())
	}
	consumer, err := c.Link(ctx, "s", delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	if producer.End() != delivery.ProducerEnd || consumer.End() != delivery.ConsumerEnd {
		t.Errorf("End() = %v, %v", producer.End(), consumer.End())
	}
	sendOne(t, ctx, producer, consumer, "x")
	for msg, want := range map[string][]string{
		"listening": {"addr=" + c.Addr(), "tls=off"},
		"dialing":   {"end=producer", "addr=" + c.Addr(), "tls=off"},
	} {
		line := logLine(logs.String(), "msg="+msg)
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("the %s line %q does not say %s; the log:\n%s", msg, line, w, logs.String())
			}
		}
	}
}

// second returns the error of a constructor's two results, closing what
// it made if anything.
func second[T interface{ Close() error }](v T, err error) error {
	if err == nil {
		v.Close()
	}
	return err
}

// logLine returns the first line of log that contains s.
func logLine(log, s string) string {
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// TestCarrierClose: Close closes every link the carrier made and its
// listener; Link fails afterwards; Close is idempotent.
func TestCarrierClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := tcp.New("127.0.0.1:0", delivery.ProducerEnd, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := c.Link(ctx, "s", delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := c.Link(ctx, "s", delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Link(ctx, "s", delivery.ProducerEnd); !errors.Is(err, tcp.ErrStreamInUse) {
		t.Errorf("a second listening link of the stream: %v; want ErrStreamInUse", err)
	}
	addr := c.Addr()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, l := range []*tcp.Link{producer, consumer} {
		if _, err := l.Receive(ctx); !errors.Is(err, delivery.ErrLinkClosed) {
			t.Errorf("the %v link after the carrier closed: %v", l.End(), err)
		}
	}
	if _, err := c.Link(ctx, "t", delivery.ConsumerEnd); !errors.Is(err, tcp.ErrClosed) {
		t.Errorf("Link after Close: %v; want ErrClosed", err)
	}
	if st := c.Status(); st.Connected || !errors.Is(st.Err, tcp.ErrClosed) {
		t.Errorf("Status after Close: %+v", st)
	}
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Errorf("the listener at %s still accepts after Close", addr)
	}
}

// TestDialContextDone: Dial with a done ctx makes no link.
func TestDialContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if l, err := tcp.Dial(ctx, "127.0.0.1:1", "s", delivery.ProducerEnd, testConfig); !errors.Is(err, context.Canceled) || l != nil {
		t.Errorf("Dial with a cancelled ctx = %v, %v", l, err)
	}
	c, _ := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, testConfig)
	defer c.Close()
	if _, err := c.Link(ctx, "s", delivery.ProducerEnd); !errors.Is(err, context.Canceled) {
		t.Errorf("Carrier.Link with a cancelled ctx: %v", err)
	}
}

// TestCarrierOneTLSConfig: one tls.Config, with the listener's certificate,
// a client certificate required and the roots to verify the listener,
// serves a carrier that both listens and dials. A listener with TLS and no
// certificate is refused at Listen.
func TestCarrierOneTLSConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPKI(t)
	cfg := testConfig
	cfg.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.both},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		RootCAs:      p.pool,
		MinVersion:   tls.VersionTLS13,
	}
	c, err := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	consumer, err := c.Link(ctx, "secure", delivery.ConsumerEnd)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := c.Link(ctx, "secure", delivery.ProducerEnd)
	if err != nil {
		t.Fatal(err)
	}
	sendOne(t, ctx, producer, consumer, "over tls")

	noCert := testConfig
	noCert.TLS = &tls.Config{RootCAs: p.pool}
	var ce *tcp.ConfigError
	if _, err := tcp.Listen(ctx, "127.0.0.1:0", noCert); !errors.As(err, &ce) || ce.Field != "TLS" {
		t.Errorf("Listen with TLS and no certificate: %v; want a *ConfigError for TLS", err)
	}
	dialOnly, err := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, noCert)
	if err != nil {
		t.Fatalf("New with a dialer's TLS config: %v", err)
	}
	defer dialOnly.Close()
	if _, err := dialOnly.Link(ctx, "s", delivery.ConsumerEnd); !errors.As(err, &ce) {
		t.Errorf("the listening end with no certificate: %v; want a *ConfigError", err)
	}
}

// sendOne sends msg on from and fails t unless to receives it next.
func sendOne(t *testing.T, ctx context.Context, from, to *tcp.Link, msg string) {
	t.Helper()
	if err := from.Send(ctx, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if f, err := to.Receive(ctx); err != nil || string(f.Data) != msg {
		t.Fatalf("Receive = %q, %v; want %q", f.Data, err, msg)
	}
}

func waitConnected(t *testing.T, ctx context.Context, carriers ...*tcp.Carrier) {
	t.Helper()
	waitFor(t, ctx, "the carriers connected", func() bool {
		for _, c := range carriers {
			if !c.Status().Connected {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond until it holds or ctx ends: a status has no event.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("still waiting for %s: %v", what, ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
