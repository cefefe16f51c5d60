package amqp_test

import (
	"context"
	"fmt"
	"log"

	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// Both ends of the stream "orders" over RabbitMQ. In a deployment each end
// runs in a process of its own, with a Carrier of its own; either may start
// first, since the broker's queues hold the frames. (This example needs a
// broker, so it is compiled, not run, by go test.)
func Example() {
	ctx := context.Background()
	carrier, err := amqp.New(ctx, amqp.Config{
		URL:  "amqp://guest:guest@localhost:5672/",
		Name: "orders-service", // the connections show as "orders-service publish" and "... consume"
		// At least the consumer's window, so the broker never holds back a
		// frame the consumer controller waits for.
		Prefetch: 1000,
	})
	if err != nil {
		log.Fatal(err) // an *amqp.ConnectError naming the URL, or an *amqp.ConfigError
	}
	defer carrier.Close()

	// Declares bridge.orders.data and bridge.orders.control.
	producerLink, err := carrier.Link(ctx, "orders", delivery.ProducerEnd)
	if err != nil {
		log.Fatal(err)
	}
	consumerLink, err := carrier.Link(ctx, "orders", delivery.ConsumerEnd)
	if err != nil {
		log.Fatal(err)
	}
	producer, err := delivery.NewProducerController[string](producerLink, nil, delivery.ProducerSettings{ProducerID: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	consumer, err := delivery.NewConsumerController[string](consumerLink, nil, delivery.ConsumerSettings{Window: 1000})
	if err != nil {
		log.Fatal(err)
	}
	go producer.Run(ctx)
	go consumer.Run(ctx)

	go func() {
		for _, order := range []string{"one", "two", "three"} {
			// Published persistent, with a publisher confirm; resent if lost.
			if _, err := producer.Send(ctx, order); err != nil {
				return
			}
		}
	}()
	for range 3 {
		d, err := consumer.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.SeqNr, d.Message)
		// Once every message of a frame is confirmed, the frame is acked to
		// the broker; until then the broker keeps it for a restarted consumer.
		d.Confirm()
	}
	if err := producer.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	consumer.Close()
	fmt.Printf("%+v\n", producerLink.Status())
}
