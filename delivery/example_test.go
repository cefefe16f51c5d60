package delivery_test

import (
	"context"
	"fmt"

	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// A producer and a consumer exchange messages over an in-memory pipe. Any
// carrier's links take the pipe's place.
func Example() {
	pipe, _ := memory.NewPipe(memory.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	producer, err := delivery.NewProducerController[string](pipe.Producer(), nil,
		delivery.ProducerSettings{ProducerID: "orders"})
	if err != nil {
		panic(err)
	}
	consumer, err := delivery.NewConsumerController[string](pipe.Consumer(), nil,
		delivery.ConsumerSettings{Window: 10})
	if err != nil {
		panic(err)
	}
	go producer.Run(ctx)
	go consumer.Run(ctx)
	defer producer.Close()
	defer consumer.Close()

	confirmation := make(chan *delivery.Confirmation, 1)
	go func() {
		for _, m := range []string{"one", "two", "three"} {
			// Send waits until the consumer's window has room for m.
			if _, err := producer.Send(ctx, m); err != nil {
				return
			}
		}
		// A reply tells the producer when the consumer has processed it.
		c, err := producer.SendWithConfirmation(ctx, "four")
		if err == nil {
			confirmation <- c
		}
	}()

	for range 4 {
		d, err := consumer.Receive(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.SeqNr, d.Message)
		d.Confirm()
	}
	c := <-confirmation
	if c.Wait(ctx) == nil {
		fmt.Println("four confirmed as", c.SeqNr())
	}
	// Shutdown waits until everything sent has been confirmed.
	if err := producer.Shutdown(ctx); err != nil {
		panic(err)
	}
	// Output:
	// 1 one
	// 2 two
	// 3 three
	// 4 four
	// four confirmed as 4
}

// Two workers share a work-pulling stream on the memory carrier: each
// message goes to one of them.
func ExampleWorkPullingProducerController() {
	carrier, _ := memory.NewCarrier(memory.Options{})
	defer carrier.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	producer, err := delivery.NewWorkPullingProducerController[string](carrier, "jobs", nil,
		delivery.WorkPullingSettings{ProducerSettings: delivery.ProducerSettings{ProducerID: "jobs"}})
	if err != nil {
		panic(err)
	}
	go producer.Run(ctx)
	defer producer.Close()

	got := make(chan string)
	for _, id := range []string{"a", "b"} {
		worker, err := delivery.NewWorkerController[string](ctx, carrier, "jobs", nil,
			delivery.WorkerSettings{WorkerID: id, ConsumerSettings: delivery.ConsumerSettings{Window: 2}})
		if err != nil {
			panic(err)
		}
		go worker.Run(ctx)
		defer worker.Close()
		go func() {
			for {
				d, err := worker.Receive(ctx)
				if err != nil {
					return
				}
				got <- d.Message
				d.Confirm()
			}
		}()
	}

	// Send waits until a worker has joined and has room.
	var last *delivery.Confirmation
	for _, job := range []string{"one", "two", "three", "four"} {
		if last, err = producer.SendWithConfirmation(ctx, job); err != nil {
			panic(err)
		}
	}
	seen := map[string]bool{}
	for range 4 {
		seen[<-got] = true
	}
	if last.Wait(ctx) == nil {
		fmt.Println(len(seen), "jobs done, each by one worker")
	}
	// Output:
	// 4 jobs done, each by one worker
}
