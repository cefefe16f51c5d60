package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

func newSecret(t testing.TB, s string) *delivery.Secret {
	t.Helper()
	sec, err := delivery.NewSecret([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func seal(t testing.TB, l delivery.Link, stream string, end delivery.End, cfg delivery.SealConfig) *delivery.SealedLink {
	t.Helper()
	s, err := delivery.Seal(l, stream, end, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tapLink records every frame sent through it.
type tapLink struct {
	delivery.Link
	mu   sync.Mutex
	sent [][]byte
}

func (l *tapLink) Send(ctx context.Context, frame []byte) error {
	l.mu.Lock()
	l.sent = append(l.sent, bytes.Clone(frame))
	l.mu.Unlock()
	return l.Link.Send(ctx, frame)
}

func (l *tapLink) frames() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.sent...)
}

// sealedStream runs a producer and a consumer over a pipe, each end sealed
// with its own config; the consumer's link takes injected frames below the
// seal.
type sealedStream struct {
	producer *delivery.ProducerController[[]byte]
	consumer *delivery.ConsumerController[[]byte]
	pLink    *delivery.SealedLink
	cLink    *delivery.SealedLink
	inject   chan<- []byte // to the consumer, below its seal
	tap      *tapLink      // what the producer's seal hands the carrier
	stop     func()
}

func startSealedStream(t *testing.T, ctx context.Context, pcfg, ccfg delivery.SealConfig) *sealedStream {
	t.Helper()
	pipe, _ := memory.NewPipe(memory.Options{})
	tap := &tapLink{Link: pipe.Producer()}
	injecting := newInjectingLink(pipe.Consumer())
	s := &sealedStream{
		pLink:  seal(t, tap, "orders", delivery.ProducerEnd, pcfg),
		cLink:  seal(t, injecting, "orders", delivery.ConsumerEnd, ccfg),
		inject: injecting.inject,
		tap:    tap,
	}
	ps := fastProducer
	ps.ProducerID = "p"
	s.producer, _ = delivery.NewProducerController[[]byte](s.pLink, nil, ps)
	s.consumer, _ = delivery.NewConsumerController[[]byte](s.cLink, nil, fastConsumer)
	waitProducer := run(t, ctx, s.producer)
	waitConsumer := run(t, ctx, s.consumer)
	s.stop = func() {
		s.producer.Close()
		s.consumer.Close()
		waitProducer()
		waitConsumer()
	}
	t.Cleanup(s.stop)
	return s
}

func (s *sealedStream) send(ctx context.Context, from, n int) {
	go func() {
		for i := from; i < from+n; i++ {
			if _, err := s.producer.Send(ctx, []byte(fmt.Sprintf("plaintext-%08d", i))); err != nil {
				return
			}
		}
	}()
}

func (s *sealedStream) take(t *testing.T, ctx context.Context, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		d, err := s.consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v (consumer %+v, seal %+v)", i, err, s.consumer.Stats(), s.cLink.Stats())
		}
		if want := fmt.Sprintf("plaintext-%08d", i); string(d.Message) != want {
			t.Fatalf("got %q, want %q", d.Message, want)
		}
		d.Confirm()
	}
}

// TestSealedStream: over sealed links every message arrives once and in
// order, and no frame the carrier carries holds a message's bytes.
func TestSealedStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := delivery.SealConfig{Secret: newSecret(t, "correct horse battery staple")}
	s := startSealedStream(t, ctx, cfg, cfg)
	s.send(ctx, 0, 1000)
	s.take(t, ctx, 0, 1000)
	for _, f := range s.tap.frames() {
		if bytes.Contains(f, []byte("plaintext-")) {
			t.Fatalf("a frame on the carrier shows what it carries: %q", f)
		}
	}
	if st := s.pLink.Stats(); st.Sealed == 0 || st.Opened == 0 {
		t.Errorf("producer's seal %+v: want frames sealed and opened", st)
	}
	if st := s.cLink.Stats(); st.Opened == 0 || rejected(st) != 0 {
		t.Errorf("consumer's seal %+v: want frames opened and none rejected", st)
	}
}

func rejected(st delivery.SealStats) (n uint64) {
	for _, v := range st.Rejected {
		n += v
	}
	return n
}

// sealedBy returns the frames a SealedLink of stream and end, with cfg,
// makes of frame: what a peer with that configuration would send.
func sealedBy(t *testing.T, stream string, end delivery.End, cfg delivery.SealConfig, frame []byte) []byte {
	t.Helper()
	pipe, _ := memory.NewPipe(memory.Options{})
	defer pipe.Close()
	tap := &tapLink{Link: pipe.Producer()}
	l := seal(t, tap, stream, end, cfg)
	if err := l.Send(context.Background(), frame); err != nil {
		t.Fatal(err)
	}
	return tap.frames()[0]
}

// TestSealRejects: a stranger's frames do not open, whatever they are; each
// is counted by why, none reaches the protocol, and the stream goes on,
// every message once and in order.
func TestSealRejects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := delivery.SealConfig{Secret: newSecret(t, "correct horse battery staple")}
	s := startSealedStream(t, ctx, cfg, cfg)
	s.send(ctx, 0, 200)
	s.take(t, ctx, 0, 100)

	// What a stranger could send: the protocol's frames (a first message of
	// an epoch that would take the stream over, a flood of them), those
	// sealed with another secret, for another stream or for the other
	// direction, and broken seals.
	forged := delivery.ForgedData("p", ^uint64(0), true, []byte("plaintext-forged"), 1, 2, 3)
	other := delivery.SealConfig{Secret: newSecret(t, "another secret, sixteen+ bytes")}
	good := sealedBy(t, "orders", delivery.ProducerEnd, cfg, forged)
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	version := bytes.Clone(good)
	version[1] = 9
	strangers := map[string][][]byte{
		delivery.RejectUnsealed: {forged, forged, forged},
		delivery.RejectForged: {
			sealedBy(t, "orders", delivery.ProducerEnd, other, forged),
			sealedBy(t, "payments", delivery.ProducerEnd, cfg, forged),
			sealedBy(t, "orders", delivery.ConsumerEnd, cfg, forged),
			tampered,
		},
		delivery.RejectVersion: {version},
		delivery.RejectShort:   {good[:20], {0xBE}},
	}
	for _, frames := range strangers {
		for _, f := range frames {
			s.inject <- f
		}
	}
	s.take(t, ctx, 100, 100)
	injected := 0
	for _, frames := range strangers {
		injected += len(frames)
	}
	// The injected frames may still be in the link's queue: the counts have
	// no event, so they are polled.
	for deadline := time.Now().Add(5 * time.Second); rejected(s.cLink.Stats()) < uint64(injected) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	st := s.cLink.Stats()
	for reason, frames := range strangers {
		if st.Rejected[reason] != uint64(len(frames)) {
			t.Errorf("rejected as %s: %d; %d were sent (%+v)", reason, st.Rejected[reason], len(frames), st)
		}
	}
	if cs := s.consumer.Stats(); cs.BadFrames != 0 || cs.Foreign != 0 || cs.Numberings != 1 {
		t.Errorf("consumer %+v: a stranger's frame reached the protocol", cs)
	}
}

// TestSealReplayIsHarmless: the peer's own sealed frames sent again open,
// and the protocol drops what they repeat.
func TestSealReplayIsHarmless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := delivery.SealConfig{Secret: newSecret(t, "correct horse battery staple")}
	s := startSealedStream(t, ctx, cfg, cfg)
	s.send(ctx, 0, 300)
	s.take(t, ctx, 0, 100)
	for _, f := range s.tap.frames() {
		s.inject <- f
	}
	s.take(t, ctx, 100, 200)
	// The last replayed frames may reach the consumer after the last new
	// message: the count has no event, so it is polled.
	for deadline := time.Now().Add(5 * time.Second); s.consumer.Stats().Duplicates == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if d := s.consumer.Stats().Duplicates; d == 0 {
		t.Error("the replayed frames were not dropped as duplicates")
	}
}

// TestSealRotation: an end given the new secret with the old one as
// Previous opens the frames of a peer still on the old one, both ways.
func TestSealRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	oldSecret, newSecret := newSecret(t, "the secret of last month"), newSecret(t, "the secret of this month")
	s := startSealedStream(t, ctx,
		delivery.SealConfig{Secret: oldSecret},
		delivery.SealConfig{Secret: newSecret, Previous: oldSecret})
	s.send(ctx, 0, 100)
	s.take(t, ctx, 0, 50) // the consumer opens the old secret's data frames

	// The other way: the consumer seals with the new secret; a producer
	// with the old as Previous opens its control frames.
	s2 := startSealedStream(t, ctx,
		delivery.SealConfig{Secret: newSecret, Previous: oldSecret},
		delivery.SealConfig{Secret: oldSecret})
	s2.send(ctx, 0, 100)
	s2.take(t, ctx, 0, 100)
	s.take(t, ctx, 50, 50)
}

// TestSealMismatch: ends with different secrets say so, each in its
// link's Status, within seconds.
func TestSealMismatch(t *testing.T) {
	defer delivery.SetMismatchAfter(200 * time.Millisecond)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startSealedStream(t, ctx,
		delivery.SealConfig{Secret: newSecret(t, "the producer's own secret")},
		delivery.SealConfig{Secret: newSecret(t, "the consumer's own secret")})
	s.send(ctx, 0, 10)
	for _, l := range []*delivery.SealedLink{s.pLink, s.cLink} {
		deadline := time.Now().Add(10 * time.Second)
		for st := l.Status(); !errors.Is(st.Err, delivery.ErrSealMismatch); st = l.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("status %+v after 10 s of frames that do not open; want ErrSealMismatch", st)
			}
			time.Sleep(20 * time.Millisecond) // the status has no event
		}
	}
}

func TestSecretTooShort(t *testing.T) {
	_, err := delivery.NewSecret([]byte("fifteen bytes!!"))
	var se *delivery.SettingError
	if !errors.As(err, &se) || !errors.Is(err, delivery.ErrInvalidSettings) {
		t.Fatalf("a secret of 15 bytes: %v; want a *SettingError", err)
	}
	pipe, _ := memory.NewPipe(memory.Options{})
	if _, err := delivery.Seal(pipe.Producer(), "s", delivery.ProducerEnd, delivery.SealConfig{}); !errors.As(err, &se) {
		t.Fatalf("Seal without a secret: %v; want a *SettingError", err)
	}
}

// FuzzOpenSealed: no bytes open without the key, and nothing panics. The
// seeds are well-formed frames sealed with another secret (a fuzzer worker
// runs this setup again, with other nonces, so the receiver's own frames
// could not be recognised across processes).
func FuzzOpenSealed(f *testing.F) {
	pipe, _ := memory.NewPipe(memory.Options{})
	tap := &tapLink{Link: pipe.Producer()}
	sender, _ := delivery.Seal(tap, "s", delivery.ProducerEnd, delivery.SealConfig{Secret: newSecret(f, "the sender's secret, not the key")})
	receiver, _ := delivery.Seal(pipe.Consumer(), "s", delivery.ConsumerEnd, delivery.SealConfig{Secret: newSecret(f, "correct horse battery staple")})
	for _, frame := range [][]byte{nil, {1}, bytes.Repeat([]byte{0xBD}, 40), delivery.ForgedData("p", 1, true, []byte("x"), 1)} {
		sender.Send(context.Background(), frame)
	}
	for _, b := range tap.frames() {
		f.Add(b)
	}
	f.Add([]byte{0xBE, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := receiver.OpenSealed(bytes.Clone(b)); ok {
			t.Fatalf("%x opened without being sealed with the key", b)
		}
	})
}
