package tcp_test

import (
	"context"
	"fmt"

	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// The consumer listens and the producer dials; the delivery controllers run
// over the two links.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := tcp.Config{Secret: "s3cret"}

	ln, err := tcp.Listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	consumerLink, _ := ln.Link("orders", delivery.ConsumerEnd)
	producerLink, _ := tcp.Dial(ln.Addr().String(), "orders", delivery.ProducerEnd, cfg)

	producer, _ := delivery.NewProducerController[string](producerLink, nil, delivery.ProducerSettings{ProducerID: "shop"})
	consumer, _ := delivery.NewConsumerController[string](consumerLink, nil, delivery.ConsumerSettings{})
	go producer.Run(ctx)
	go consumer.Run(ctx)
	defer producer.Close()
	defer consumer.Close()

	go producer.Send(ctx, "order 1")
	d, err := consumer.Receive(ctx)
	if err != nil {
		panic(err)
	}
	d.Confirm()
	fmt.Println(d.Message)
	// Output: order 1
}
