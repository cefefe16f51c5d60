package adaptertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// The hostile tests run a sealed stream over the carrier while strangers
// send what they can into it, through the carrier itself (Spec.Inject):
// garbage, the protocol's frames unsealed (a first message of an epoch that
// would take the stream over, registrations, requests and acks that
// confirm everything, resends), frames sealed with another secret, for
// another stream or for the other direction, and replays of the stream's
// own frames. Nothing may be lost, nothing injected may be delivered,
// nothing confirmed that the consumer did not confirm, and the producer
// may hold no more than its own messages.

// hostileSecret is the stream's secret in the hostile tests.
const hostileSecret = "the conformance suite's stream secret"

// tapLink records what a link sends.
type tapLink struct {
	delivery.Link
	mu   sync.Mutex
	sent [][]byte
}

func (l *tapLink) Send(ctx context.Context, frame []byte) error {
	l.mu.Lock()
	if len(l.sent) < 64 { // enough to replay; a stream sends many more
		l.sent = append(l.sent, slices.Clone(frame))
	}
	l.mu.Unlock()
	return l.Link.Send(ctx, frame)
}

func (l *tapLink) frames() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sent)
}

// stranger is a frame a stranger sends to an end.
type stranger struct {
	to    delivery.End
	what  string
	frame []byte
}

// testHostile: see the comment at the top of this file.
func testHostile(t *testing.T, spec Spec) {
	if spec.Inject == nil {
		t.Fatalf("%s: Spec.Inject is required: the hostile tests send a stranger's frames through the carrier", spec.Name)
	}
	ctx := context4(t, spec)
	s := stream(t)
	secret := mustSecret(t, hostileSecret)
	cfg := delivery.SealConfig{Secret: secret}
	cTap := &tapLink{Link: open(t, ctx, spec, s, delivery.ConsumerEnd)}
	cLink := mustSeal(t, cTap, s, delivery.ConsumerEnd, cfg)
	pTap := &tapLink{Link: open(t, ctx, spec, s, delivery.ProducerEnd)}
	pLink := mustSeal(t, pTap, s, delivery.ProducerEnd, cfg)
	n := spec.messages()
	cons := StartConsumer(t, ctx, cLink, FastConsumer)
	p := StartProducer(t, ctx, pLink, FastProducer, 0, n, SmallMessages)

	strangers := strangerFrames(t, ctx, s, secret)
	var mu sync.Mutex
	var problems []string
	marks := []int{n / 8, 3 * n / 8, 5 * n / 8, 7 * n / 8}
	got := cons.TakeWithFaults(ctx, n-1, marks, func(k int) {
		for _, st := range strangers {
			spec.Inject(t, s, st.to, st.frame)
		}
		for _, f := range pTap.frames() {
			spec.Inject(t, s, delivery.ConsumerEnd, f)
		}
		for _, f := range cTap.frames() {
			spec.Inject(t, s, delivery.ProducerEnd, f)
		}
		// Read the producer first: what it took for confirmed, the
		// consumer must have confirmed before.
		ps, cs := p.Stats(), cons.Stats()
		if ps.ConfirmedSeqNr > cs.ConfirmedSeqNr {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("wave %d: the producer took %d for confirmed; the consumer confirmed %d", k, ps.ConfirmedSeqNr, cs.ConfirmedSeqNr))
			mu.Unlock()
		}
		if limit := int64(n) * int64(SmallMessages(0)+256); ps.HeldBytes > limit {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("wave %d: the producer holds %d bytes, more than all its messages", k, ps.HeldBytes))
			mu.Unlock()
		}
	})
	CheckExactlyOnceInOrder(t, got, n)
	p.Stop(ctx)
	cons.Stop(ctx)
	for _, problem := range problems {
		t.Error(problem)
	}
	// The strangers' frames reached both ends and were dropped there, before
	// the protocol saw them.
	for _, l := range []*delivery.SealedLink{cLink, pLink} {
		st := l.Stats()
		if st.Rejected[delivery.RejectUnsealed]+st.Rejected[delivery.RejectForged] == 0 {
			t.Errorf("%s: an end rejected no stranger's frame (%+v): the injection does not reach it", spec.Name, st)
		}
	}
	if cs := cons.Stats(); cs.BadFrames != 0 || cs.Numberings != 1 {
		t.Errorf("consumer %+v: a stranger's frame reached the protocol", cs)
	}
	if ps := p.Stats(); ps.BadFrames != 0 || ps.Registrations > 4 {
		t.Errorf("producer %+v: a stranger's frame reached the protocol", ps)
	}
}

// strangerFrames makes the frames strangers send, for stream: garbage, the
// protocol's own frames unsealed, as a producer and a consumer with no
// secret write them, and the same sealed with another secret, for another
// stream and for the other direction.
func strangerFrames(t *testing.T, ctx context.Context, stream string, secret *delivery.Secret) []stranger {
	data, control := unsealedFrames(t, ctx)
	var out []stranger
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		junk := make([]byte, 1+rng.IntN(300))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		out = append(out, stranger{delivery.ConsumerEnd, "garbage", junk}, stranger{delivery.ProducerEnd, "garbage", slices.Clone(junk)})
	}
	other := mustSecret(t, "a stranger's secret, not the stream's")
	for _, f := range data {
		out = append(out,
			stranger{delivery.ConsumerEnd, "unsealed data", f},
			stranger{delivery.ConsumerEnd, "data sealed with another secret", sealAs(t, stream, delivery.ProducerEnd, other, f)},
			stranger{delivery.ConsumerEnd, "data sealed for another stream", sealAs(t, stream+"-other", delivery.ProducerEnd, secret, f)},
			stranger{delivery.ConsumerEnd, "data sealed for the other direction", sealAs(t, stream, delivery.ConsumerEnd, secret, f)})
	}
	for _, f := range control {
		out = append(out,
			stranger{delivery.ProducerEnd, "unsealed control", f},
			stranger{delivery.ProducerEnd, "control sealed with another secret", sealAs(t, stream, delivery.ConsumerEnd, other, f)},
			stranger{delivery.ProducerEnd, "control sealed for another stream", sealAs(t, stream+"-other", delivery.ConsumerEnd, secret, f)},
			stranger{delivery.ProducerEnd, "control sealed for the other direction", sealAs(t, stream, delivery.ProducerEnd, secret, f)})
	}
	return out
}

// unsealedFrames are frames of the protocol as a producer and a consumer
// with no secret send them: data frames (the first marked first) of the
// suite's producer ID, and control frames (registrations, requests, acks).
func unsealedFrames(t *testing.T, ctx context.Context) (data, control [][]byte) {
	t.Helper()
	pipe, err := memory.NewPipe(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pTap, cTap := &tapLink{Link: pipe.Producer()}, &tapLink{Link: pipe.Consumer()}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ps := FastProducer
	ps.Epoch = uint64(time.Now().Add(time.Minute).UnixNano()) // later than the real one: it would take over
	cons := StartConsumer(t, ctx, cTap, FastConsumer)
	p := StartProducer(t, ctx, pTap, ps, 0, 50, SmallMessages)
	cons.TakeUpTo(ctx, 49)
	p.Stop(ctx)
	cons.Stop(ctx)
	return pTap.frames(), cTap.frames()
}

// sealAs returns frame as an end of stream sealing with secret sends it.
func sealAs(t *testing.T, stream string, end delivery.End, secret *delivery.Secret, frame []byte) []byte {
	t.Helper()
	pipe, err := memory.NewPipe(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	tap := &tapLink{Link: pipe.Producer()}
	l := mustSeal(t, tap, stream, end, delivery.SealConfig{Secret: secret})
	if err := l.Send(context.Background(), frame); err != nil {
		t.Fatal(err)
	}
	return tap.frames()[0]
}

func mustSecret(t testing.TB, s string) *delivery.Secret {
	t.Helper()
	sec, err := delivery.NewSecret([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func mustSeal(t testing.TB, l delivery.Link, stream string, end delivery.End, cfg delivery.SealConfig) *delivery.SealedLink {
	t.Helper()
	s, err := delivery.Seal(l, stream, end, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
