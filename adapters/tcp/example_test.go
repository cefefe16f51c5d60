package tcp_test

import (
	"context"
	"fmt"

	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// The consumer end listens and the producer end dials; here both run in one
// process, on one Carrier, so its producer end dials its own listener on
// the port it took. Two processes would each make a Carrier with the same
// address and listening end, and open their own end.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	carrier, err := tcp.New("127.0.0.1:0", delivery.ConsumerEnd, tcp.Config{Secret: "a long random secret, 16+ bytes"})
	if err != nil {
		panic(err)
	}
	defer carrier.Close()
	consumerLink, err := carrier.Link(ctx, "orders", delivery.ConsumerEnd) // listens
	if err != nil {
		panic(err)
	}
	producerLink, err := carrier.Link(ctx, "orders", delivery.ProducerEnd) // dials carrier.Addr()
	if err != nil {
		panic(err)
	}

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
