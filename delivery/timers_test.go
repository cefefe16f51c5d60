package delivery_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// These tests run in a synctest bubble: time is fake and advances only when
// every goroutine waits, so timings are exact and the tests take no time.

// TestRetryBackoff: a consumer with no producer registers at once, then
// again after ResendMin, the interval growing 1.5 times up to ResendMax.
func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pipe, _ := memory.NewPipe(memory.Options{})
		consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil,
			delivery.ConsumerSettings{ResendMin: time.Second, ResendMax: 4 * time.Second})
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- consumer.Run(context.Background()) }()

		// Registrations at 0, then 1, 2.5, 4.75, 8.125 s, then every 4 s.
		synctest.Wait()
		if got := pipe.Stats().Sent; got != 1 {
			t.Fatalf("at start: %d registrations sent; want 1", got)
		}
		want := []time.Duration{1000, 2500, 4750, 8125, 12125, 16125}
		for i, at := range want {
			at *= time.Millisecond
			time.Sleep(at - time.Since(start) - time.Millisecond)
			synctest.Wait()
			if got := pipe.Stats().Sent; got != uint64(i+1) {
				t.Fatalf("at %v: %d registrations sent; want %d", time.Since(start), got, i+1)
			}
			time.Sleep(2 * time.Millisecond)
			synctest.Wait()
			if got := pipe.Stats().Sent; got != uint64(i+2) {
				t.Fatalf("at %v: %d registrations sent; want %d", time.Since(start), got, i+2)
			}
		}
		if n := consumer.Stats().Registers; n != uint64(len(want)+1) {
			t.Errorf("Stats().Registers = %d", n)
		}
		consumer.Close()
		<-done
	})
}

// TestFirstMessageRepeated: the first message goes out unasked and again
// every FirstResendInterval until a consumer answers; then no more.
func TestFirstMessageRepeated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		pipe, _ := memory.NewPipe(memory.Options{})
		producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil,
			delivery.ProducerSettings{ProducerID: "p", FirstResendInterval: time.Second})
		done := make(chan error, 2)
		go func() { done <- producer.Run(ctx) }()
		if _, err := producer.Send(ctx, []byte("first")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if st := producer.Stats(); st.MessagesSent != 1 || st.Resent != 3 {
			t.Fatalf("after 3.5 s: sent %d, resent %d; want 1 and 3", st.MessagesSent, st.Resent)
		}

		consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, delivery.ConsumerSettings{})
		go func() { done <- consumer.Run(ctx) }()
		d, err := consumer.Receive(ctx)
		if err != nil || string(d.Message) != "first" {
			t.Fatalf("Receive = %q, %v", d.Message, err)
		}
		d.Confirm()
		synctest.Wait()
		resent := producer.Stats().Resent
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := producer.Stats(); st.Resent != resent || st.ConfirmedSeqNr != 1 {
			t.Errorf("after the consumer answered: resent %d more, confirmed %d", st.Resent-resent, st.ConfirmedSeqNr)
		}
		producer.Close()
		consumer.Close()
		<-done
		<-done
	})
}

// TestAckDelay: on a quiet stream a confirmation reaches the producer
// AckDelay after the application gave it, not half a window later.
func TestAckDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		pipe, _ := memory.NewPipe(memory.Options{})
		producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
		consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil,
			delivery.ConsumerSettings{Window: 1000, AckDelay: 10 * time.Millisecond})
		done := make(chan error, 2)
		go func() { done <- producer.Run(ctx) }()
		go func() { done <- consumer.Run(ctx) }()
		for i := range 3 {
			if _, err := producer.Send(ctx, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			d, err := consumer.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d.Confirm()
		}
		synctest.Wait()
		time.Sleep(9 * time.Millisecond)
		synctest.Wait()
		if c := producer.Stats().ConfirmedSeqNr; c == 3 {
			t.Fatalf("confirmed %d before AckDelay", c)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if c := producer.Stats().ConfirmedSeqNr; c != 3 {
			t.Fatalf("confirmed %d after AckDelay; want 3", c)
		}
		producer.Close()
		consumer.Close()
		<-done
		<-done
	})
}
