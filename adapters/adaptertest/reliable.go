package adaptertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// The reliable tests run the protocol over the carrier.

// testReliable: many messages, every one once and in order.
func testReliable(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	n := spec.messages()
	cons := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
	p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, 0, n, SmallMessages)
	CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
	p.Stop(ctx)
	cons.Stop(ctx)
}

// testLargeChunked: messages of up to 3 MiB, sent in chunks that fit the
// carrier's frames, reassembled whole.
func testLargeChunked(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	sizes := []int{1 << 10, 300 << 10, 3 << 20, 64 << 10, 1<<20 + 7, 10, 2 << 20}
	size := func(i int) int { return sizes[i] }
	cons := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
	p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, 0, len(sizes), size)
	CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, len(sizes)-1), len(sizes))
	p.Stop(ctx)
	cons.Stop(ctx)
}

// testManyStreams: eight streams at once on the carrier, independent.
func testManyStreams(t *testing.T, spec Spec) {
	n := max(spec.messages()/4, 50)
	for k := range 8 {
		t.Run(fmt.Sprintf("stream%d", k), func(t *testing.T) {
			t.Parallel()
			ctx := context4(t, spec)
			s := stream(t)
			settings := FastProducer
			settings.ProducerID = fmt.Sprintf("producer-%d", k)
			cons := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
			p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), settings, 0, n, SmallMessages)
			CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
			p.Stop(ctx)
			cons.Stop(ctx)
		})
	}
}

// testCloseAndReopen: both ends stop; new ones on the same stream carry a
// new producer lifetime. On a queue, late frames of the old lifetime may
// reach the new consumer first (at least once); the new lifetime's
// messages arrive once and in order.
func testCloseAndReopen(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	const n = 100
	cons := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
	p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, 0, n, SmallMessages)
	CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
	p.Stop(ctx)
	cons.Stop(ctx)

	cons = StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
	p = StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, n, n, SmallMessages)
	got := cons.TakeUpTo(ctx, 2*n-1)
	var fresh []int
	for _, i := range got {
		if i >= n {
			fresh = append(fresh, i-n)
		} else if !spec.Queue {
			t.Fatalf("message %d of the closed lifetime after the reopen", i)
		}
	}
	CheckExactlyOnceInOrder(t, fresh, n)
	if late := len(got) - len(fresh); late > 0 {
		t.Logf("%d late messages of the old lifetime delivered again", late)
	}
	p.Stop(ctx)
	cons.Stop(ctx)
}

// testConsumerRestart: the consumer dies twice mid-stream holding
// unconfirmed messages; each lifetime sees messages in order, none starts
// after the previous stopped, and together they see every message.
func testConsumerRestart(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	n := spec.messages()
	p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, 0, n, SmallMessages)
	var lifetimes [][]int
	for life := range 3 {
		cons := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
		if life == 2 {
			lifetimes = append(lifetimes, cons.TakeUpTo(ctx, n-1))
			p.Stop(ctx)
			cons.Stop(ctx)
			break
		}
		quota := (life + 1) * n / 3
		got := cons.Take(ctx,
			func(i int, got []int) bool { return i >= quota+5 || i == n-1 },
			func(i int, _ []int) bool { return i < quota }) // the last few stay unconfirmed
		cons.Kill()
		lifetimes = append(lifetimes, got)
	}
	dups := CheckLifetimes(t, lifetimes, n)
	t.Logf("%d messages delivered again across two restarts", dups)
}

// testCut: the carrier's connections are cut three times mid-stream; every
// message arrives once and in order, and links that report their status
// count the reconnects.
func testCut(t *testing.T, spec Spec) {
	if spec.Cut == nil {
		t.Skipf("%s supplies no way to cut its connections", spec.Name)
	}
	ctx := context4(t, spec)
	s := stream(t)
	n := spec.messages()
	consumerLink := open(t, ctx, spec, s, delivery.ConsumerEnd)
	producerLink := open(t, ctx, spec, s, delivery.ProducerEnd)
	cons := StartConsumer(t, ctx, consumerLink, FastConsumer)
	p := StartProducer(t, ctx, producerLink, FastProducer, 0, n, SmallMessages)
	cuts := 0
	got := cons.Take(ctx, func(i int, got []int) bool {
		if cuts < 3 && len(got) == (cuts+1)*n/4 {
			cuts++
			spec.Cut(t, s)
		}
		return i == n-1
	}, nil)
	CheckExactlyOnceInOrder(t, got, n)
	p.Stop(ctx)
	cons.Stop(ctx)
	var reconnects uint64
	reporting := false
	for _, l := range []delivery.Link{consumerLink, producerLink} {
		if r, ok := l.(delivery.StatusReporter); ok {
			reporting = true
			reconnects += r.Status().Reconnects
		}
	}
	if reporting && reconnects == 0 {
		t.Errorf("the links report no reconnect after %d cuts", cuts)
	}
}

// testSlowConsumer: a consumer slower than its producer holds the producer
// to the window: the producer never has more than a window unconfirmed,
// and nothing is lost.
func testSlowConsumer(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	const n, window = 300, 10
	settings := FastConsumer
	settings.Window = window
	cons := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), settings)
	p := StartProducer(t, ctx, open(t, ctx, spec, s, delivery.ProducerEnd), FastProducer, 0, n, SmallMessages)
	most := delivery.SeqNr(0)
	got := cons.Take(ctx, func(i int, _ []int) bool {
		st := p.Stats()
		most = max(most, st.SentSeqNr-st.ConfirmedSeqNr)
		time.Sleep(500 * time.Microsecond) // the work that makes this consumer slow

		return i == n-1
	}, nil)
	CheckExactlyOnceInOrder(t, got, n)
	if most > window {
		t.Errorf("the producer had %d messages unconfirmed; the window is %d", most, window)
	}
	p.Stop(ctx)
	cons.Stop(ctx)
}

// testHeaders: messages' headers arrive with them over the carrier,
// chunked messages' too, and again with their resends: the first consumer
// leaves the last messages it took (a chunked one among them) unconfirmed
// and dies, so the producer must resend them to the second, on every
// carrier; where the carrier can be cut, a cut adds the resends it brings.
func testHeaders(t *testing.T, spec Spec) {
	ctx := context4(t, spec)
	s := stream(t)
	n := min(spec.messages(), 300)
	headersOf := func(i int) delivery.Headers {
		return delivery.Headers{
			{Name: "content-type", Value: "application/octet-stream"},
			{Name: "traceparent", Value: fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)},
			{Name: "bridge-meta-index", Value: fmt.Sprint(i)},
		}
	}
	size := func(i int) int {
		if i%50 == 7 {
			return 600 << 10 // chunked: the headers ride the first chunk
		}
		return SmallMessages(i)
	}
	pc, err := delivery.NewProducerController[[]byte](open(t, ctx, spec, s, delivery.ProducerEnd), nil, FastProducer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go pc.Run(ctx)
	go func() {
		for i := range n {
			if _, _, err := pc.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: Payload(i, size(i)), Headers: headersOf(i)}); err != nil {
				return
			}
		}
	}()
	// take receives and checks messages until last; those from unconfirmed
	// on stay unconfirmed. It returns the next index it expects.
	take := func(cons *Consumer, next, last, unconfirmed int, cut bool) int {
		for next <= last {
			d, err := cons.Receive(ctx)
			if err != nil {
				t.Fatalf("message %d: %v", next, err)
			}
			i, err := Index(d.Message)
			if err != nil || i > next {
				t.Fatalf("message %d, want at most %d (%v)", i, next, err)
			}
			want := headersOf(i)
			if len(d.Headers) != len(want) {
				t.Fatalf("message %d: headers %v, want %v", i, d.Headers, want)
			}
			for k := range want {
				if d.Headers[k] != want[k] {
					t.Fatalf("message %d: header %+v, want %+v", i, d.Headers[k], want[k])
				}
			}
			if i < unconfirmed {
				d.Confirm()
			}
			if i == next {
				next++
			}
			if cut && i == n/4 && spec.Cut != nil {
				cut = false
				spec.Cut(t, s)
			}
		}
		return next
	}
	half := n / 2
	first := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
	take(first, 0, min(half+10, n-1), half, true)
	first.Kill()
	second := StartConsumer(t, ctx, open(t, ctx, spec, s, delivery.ConsumerEnd), FastConsumer)
	take(second, half, n-1, n, false) // from half: what the first left unconfirmed comes again
	if err := pc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	second.Stop(ctx)
	if st := pc.Stats(); st.Resent == 0 {
		t.Errorf("nothing was resent across the consumer's restart (stats %+v)", st)
	}
}
