package delivery_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// The tests here play a peer that lies, with no secret to stop it: what an
// unsealed stream allows must still not grow a process without bound or
// stop its stream.

// hostileStream is a producer and a consumer over a pipe whose ends both
// take injected frames.
type hostileStream struct {
	producer     *delivery.ProducerController[[]byte]
	consumer     *delivery.ConsumerController[[]byte]
	toProducer   chan<- []byte
	toConsumer   chan<- []byte
	waitP, waitC func() error
}

func startHostileStream(t *testing.T, ctx context.Context, ps delivery.ProducerSettings, cs delivery.ConsumerSettings) *hostileStream {
	t.Helper()
	pipe, _ := memory.NewPipe(memory.Options{})
	pLink, cLink := newInjectingLink(pipe.Producer()), newInjectingLink(pipe.Consumer())
	ps.ProducerID = "p"
	producer, err := delivery.NewProducerController[[]byte](pLink, nil, ps)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := delivery.NewConsumerController[[]byte](cLink, nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	s := &hostileStream{producer: producer, consumer: consumer, toProducer: pLink.inject, toConsumer: cLink.inject}
	s.waitP, s.waitC = run(t, ctx, producer), run(t, ctx, consumer)
	t.Cleanup(func() {
		producer.Close()
		consumer.Close()
		s.waitP()
		s.waitC()
	})
	return s
}

func (s *hostileStream) sendFrom(ctx context.Context, from, n, size int) {
	go func() {
		for i := from; i < from+n; i++ {
			if _, err := s.producer.Send(ctx, adaptertest.Payload(i, size)); err != nil {
				return
			}
		}
	}()
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestRegisterFlood: frames of 2,000 registrations each cost a producer
// that holds 100 KiB of unconfirmed messages next to nothing: it acts on at
// most one registration a frame, and one each 100 ms, and what it resends
// waits for the writer rather than in memory. (One such frame grew a
// producer by 208 MiB before.)
func TestRegisterFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := fastConsumer
	cs.Window = 200
	s := startHostileStream(t, ctx, fastProducer, cs)
	s.sendFrom(ctx, 0, 100, 1024)
	// Take the first, so the consumer follows the producer; confirm none:
	// the producer holds all 100 KiB.
	if _, err := s.consumer.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for s.producer.Stats().SentSeqNr < 100 {
		time.Sleep(time.Millisecond) // the counters have no event
	}
	before := heapInUse()
	start := time.Now()
	const frames = 100
	received := s.producer.Stats().FramesReceived
	for i := range frames {
		s.toProducer <- delivery.ForgedRegisters(uint64(1000+i), 2000, delivery.DefaultMaxMessageSize)
	}
	for s.producer.Stats().FramesReceived < received+frames && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	grown := int64(heapInUse()) - int64(before)
	st := s.producer.Stats()
	t.Logf("heap grew %d KiB; producer %+v", grown>>10, st)
	if grown > 16<<20 {
		t.Errorf("%d frames of 2,000 registrations grew the heap by %d MiB", frames, grown>>20)
	}
	if limit := 2 + uint64(time.Since(start)/(100*time.Millisecond)); st.Registrations > limit {
		t.Errorf("%d registrations answered in %v; want at most one each 100 ms (%d)", st.Registrations, time.Since(start), limit)
	}
}

// TestConsumerEnforcesWindow: a consumer of window 10 takes nothing past
// what it granted: 20,000 messages a producer sends beyond it are dropped
// and counted, not queued (they were, all of them, before), and the stream
// goes on.
func TestConsumerEnforcesWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := fastConsumer
	cs.Window = 10
	s := startHostileStream(t, ctx, fastProducer, cs)
	s.sendFrom(ctx, 0, 40, 16)
	got, err := consume(ctx, s.consumer, 5)
	if err != nil {
		t.Fatal(err)
	}
	epoch := s.consumer.Stats().ProducerEpoch
	const beyond = 20000
	for from := 1000; from < 1000+beyond; from += 1000 {
		seqNrs := make([]delivery.SeqNr, 1000)
		for i := range seqNrs {
			seqNrs[i] = delivery.SeqNr(from + i)
		}
		s.toConsumer <- delivery.ForgedData("p", epoch, false, adaptertest.Payload(0, 16), seqNrs...)
	}
	rest, err := consume(ctx, s.consumer, 35)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, append(got, rest...), 40)
	for s.consumer.Stats().BeyondWindow < beyond && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // the counters have no event
	}
	if n := s.consumer.Stats().BeyondWindow; n != beyond {
		t.Errorf("dropped %d messages beyond the window; %d were sent", n, beyond)
	}
}

// TestLateRegisterKeepsGrant: a late repeat of the registration of the
// consumer already followed changes nothing: the producer keeps its
// window and resends nothing. (Before, 50 messages took a second after one,
// with 10 needless resends.)
func TestLateRegisterKeepsGrant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps := fastProducer
	ps.FirstResendInterval = time.Second
	cs := fastConsumer
	cs.ResendMin, cs.ResendMax = time.Second, 2*time.Second
	s := startHostileStream(t, ctx, ps, cs)
	s.sendFrom(ctx, 0, 10, 16)
	got, err := consume(ctx, s.consumer, 10)
	if err != nil {
		t.Fatal(err)
	}
	resent := s.producer.Stats().Resent
	s.toProducer <- delivery.ForgedRegisters(s.consumer.Epoch(), 1, delivery.DefaultMaxMessageSize)
	for s.producer.Stats().RegistersIgnored == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s.sendFrom(ctx, 10, 50, 16)
	rest, err := consume(ctx, s.consumer, 50)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, append(got, rest...), 60)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("50 messages took %v after a late registration; want them at once", took)
	}
	if st := s.producer.Stats(); st.Resent != resent || st.Registrations != 1 {
		t.Errorf("after a late registration: %d resent (%d before), %d registrations answered; want no resend and the first answer only", st.Resent, resent, st.Registrations)
	}
}

// TestFutureEpochRefused: a first message of an epoch far ahead of the
// consumer's clock (2^64-1: it would make every later lifetime of the real
// producer look older) is refused, and the real producer's go on.
func TestFutureEpochRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startHostileStream(t, ctx, fastProducer, fastConsumer)
	s.sendFrom(ctx, 0, 10, 16)
	got, err := consume(ctx, s.consumer, 5)
	if err != nil {
		t.Fatal(err)
	}
	real := s.consumer.Stats().ProducerEpoch
	s.toConsumer <- delivery.ForgedData("p", ^uint64(0), true, adaptertest.Payload(999, 16), 1, 2, 3)
	rest, err := consume(ctx, s.consumer, 5)
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckExactlyOnceInOrder(t, append(got, rest...), 10)
	if st := s.consumer.Stats(); st.ProducerEpoch != real || st.Numberings != 1 {
		t.Errorf("consumer %+v: the forged epoch took the stream over", st)
	}
}

// TestWindowBytes: the producer keeps what it has in flight within the
// consumer's window in bytes, as well as its window in sequence numbers;
// a message larger than the window goes alone; and a producer that sends
// past the bytes granted has what is past dropped and counted.
func TestWindowBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := fastConsumer
	cs.Window, cs.WindowBytes = 1000, 64<<10
	s := startHostileStream(t, ctx, fastProducer, cs)
	const n = 200
	go func() {
		for i := range n {
			size := 16 << 10
			if i == 100 {
				size = 200 << 10 // larger than the window: alone
			}
			if _, err := s.producer.Send(ctx, adaptertest.Payload(i, size)); err != nil {
				return
			}
		}
	}()
	var got []int
	worst := int64(0)
	for len(got) < n {
		d, err := s.consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", len(got), err)
		}
		i, _ := adaptertest.Index(d.Message)
		got = append(got, i)
		if f := s.producer.Stats().InFlightBytes; f > worst && i != 100 {
			worst = f
		}
		d.Confirm()
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	if worst > 64<<10 {
		t.Errorf("the producer had %d bytes in flight; the window is 64 KiB", worst)
	}
	if b := s.consumer.Stats().BeyondWindow; b != 0 {
		t.Errorf("the consumer dropped %d messages beyond its window from an honest producer", b)
	}

	// A producer that ignores the bytes granted: a frame of 100 messages of
	// 16 KiB, within the window in sequence numbers, past the one in bytes.
	epoch := s.consumer.Stats().ProducerEpoch
	seqNrs := make([]delivery.SeqNr, 100)
	for i := range seqNrs {
		seqNrs[i] = delivery.SeqNr(n + 1 + i)
	}
	s.toConsumer <- delivery.ForgedData("p", epoch, false, adaptertest.Payload(n, 16<<10), seqNrs...)
	for s.consumer.Stats().BeyondWindow == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // the counters have no event
	}
	if st := s.consumer.Stats(); st.ReceivedSeqNr > n+4 {
		t.Errorf("consumer %+v: it took %d messages of 16 KiB past a window of 64 KiB", st, st.ReceivedSeqNr-n)
	}
}

// TestWindowBytesChunked: a chunked message larger than the window in
// bytes still goes, whole: the consumer confirms a message only once it
// has every chunk, so a window that stopped its chunks would stay shut.
func TestWindowBytesChunked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, cs := fastProducer, fastConsumer
	ps.ChunkSize = 16 << 10
	cs.Window, cs.WindowBytes = 1000, 64<<10
	s := startHostileStream(t, ctx, ps, cs)
	sizes := []int{1 << 10, 48 << 10, 300 << 10, 16, 64 << 10, 65<<10 + 1, 8}
	go func() {
		for i, size := range sizes {
			if _, err := s.producer.Send(ctx, adaptertest.Payload(i, size)); err != nil {
				return
			}
		}
	}()
	var got []int
	for len(got) < len(sizes) {
		d, err := s.consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v (consumer %+v, producer %+v)", len(got), err, s.consumer.Stats(), s.producer.Stats())
		}
		i, _ := adaptertest.Index(d.Message)
		if len(d.Message) != sizes[i] {
			t.Fatalf("message %d: %d bytes, want %d", i, len(d.Message), sizes[i])
		}
		got = append(got, i)
		d.Confirm()
	}
	adaptertest.CheckExactlyOnceInOrder(t, got, len(sizes))
	if b := s.consumer.Stats().BeyondWindow; b != 0 {
		t.Errorf("the consumer dropped %d messages beyond its window from an honest producer", b)
	}
}
