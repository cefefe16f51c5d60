package adaptertest

import (
	"os"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// DefaultRabbitMQ is the broker tests use when BRIDGE_TEST_AMQP_URL is
// unset: the machine's own.
const DefaultRabbitMQ = "amqp://guest:guest@127.0.0.1:5672/"

// RabbitMQ returns the URL of the RabbitMQ the tests use
// (BRIDGE_TEST_AMQP_URL, or DefaultRabbitMQ), after checking it answers; if
// it does not, the test is skipped, or failed when brokers are required.
func RabbitMQ(t testing.TB) string {
	t.Helper()
	url := os.Getenv("BRIDGE_TEST_AMQP_URL")
	if url == "" {
		url = DefaultRabbitMQ
	}
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(3 * time.Second)})
	if err != nil {
		BrokerUnavailable(t, "RabbitMQ at %s (BRIDGE_TEST_AMQP_URL): %v", url, err)
		return ""
	}
	conn.Close()
	return url
}

// DeleteQueues deletes the named queues, if it can: a test's cleanup on a
// broker other tests share.
func DeleteQueues(url string, names ...string) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, n := range names {
		ch.QueueDelete(n, false, false, false)
	}
}
