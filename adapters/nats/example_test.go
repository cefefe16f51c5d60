package nats_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/delivery"
)

// A producer and a consumer exchange messages through JetStream on an
// embedded NATS server: what the bridge does when no NATS URL is
// configured. Give Config.URL the address of a real server instead, and
// leave Mode out for core NATS.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := nats.StartServer(ctx, nats.ServerConfig{}) // any free port, a temporary store
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()

	carrier, err := nats.New(ctx, nats.Config{URL: srv.URL(), Mode: nats.ModeJetStream})
	if err != nil {
		panic(err)
	}
	defer carrier.Close()

	// Each end would normally run in its own process.
	producerLink, err := carrier.Link(ctx, "orders", delivery.ProducerEnd)
	if err != nil {
		panic(err)
	}
	consumerLink, err := carrier.Link(ctx, "orders", delivery.ConsumerEnd)
	if err != nil {
		panic(err)
	}
	producer, err := delivery.NewProducerController[string](producerLink, nil, delivery.ProducerSettings{ProducerID: "orders"})
	if err != nil {
		panic(err)
	}
	consumer, err := delivery.NewConsumerController[string](consumerLink, nil, delivery.ConsumerSettings{})
	if err != nil {
		panic(err)
	}
	go producer.Run(ctx)
	go consumer.Run(ctx)
	defer consumer.Close()

	go func() {
		for _, m := range []string{"one", "two", "three"} {
			if _, err := producer.Send(ctx, m); err != nil {
				return
			}
		}
	}()
	for range 3 {
		d, err := consumer.Receive(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.SeqNr, d.Message)
		d.Confirm() // the frame is acked in JetStream once all its messages are confirmed
	}
	// Shutdown waits until everything sent has been confirmed.
	if err := producer.Shutdown(ctx); err != nil {
		panic(err)
	}
	// Output:
	// 1 one
	// 2 two
	// 3 three
}
