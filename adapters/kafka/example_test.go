package kafka_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/twmb/franz-go/pkg/kfake"
)

// A stream over Kafka: one carrier, a link for each end of the stream, and
// the delivery protocol's controllers on them. Here the broker is kfake, an
// in-process Kafka for tests, so that the example runs anywhere; give
// Config.Brokers the addresses of a real cluster (and Config.TLS and
// Config.SASL for a hosted one).
func Example() {
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	carrier, err := kafka.New(ctx, kafka.Config{Brokers: broker.ListenAddrs()})
	if err != nil {
		log.Fatal(err)
	}
	defer carrier.Close()

	// Usually each end runs in its own process; both are here.
	consumerLink, err := carrier.Link(ctx, "orders", delivery.ConsumerEnd)
	if err != nil {
		log.Fatal(err)
	}
	producerLink, err := carrier.Link(ctx, "orders", delivery.ProducerEnd)
	if err != nil {
		log.Fatal(err)
	}
	consumer, err := delivery.NewConsumerController[[]byte](consumerLink, nil, delivery.ConsumerSettings{})
	if err != nil {
		log.Fatal(err)
	}
	producer, err := delivery.NewProducerController[[]byte](producerLink, nil, delivery.ProducerSettings{ProducerID: "orders-api"})
	if err != nil {
		log.Fatal(err)
	}
	go consumer.Run(ctx)
	go producer.Run(ctx)
	defer consumer.Close()
	defer producer.Close()

	go func() {
		for _, order := range []string{"order 1", "order 2", "order 3"} {
			if _, err := producer.Send(ctx, []byte(order)); err != nil {
				return
			}
		}
	}()
	for range 3 {
		d, err := consumer.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(d.Message))
		d.Confirm() // once every message of a frame is confirmed, its offset is committed
	}
	fmt.Println("frame limit:", producerLink.MaxFrameSize(), "bytes")
	// Output:
	// order 1
	// order 2
	// order 3
	// frame limit: 1048076 bytes
}
