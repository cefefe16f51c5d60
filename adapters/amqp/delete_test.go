package amqp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/adapters/amqp"
	"github.com/bridge-mq/bridge/delivery"
)

// TestDeleteStream: DeleteStream removes both queues of a stream, frames
// and all, and only that stream's; deleting again is not an error; a bad
// name and a closed carrier are.
func TestDeleteStream(t *testing.T) {
	requireBroker(t)
	stream, other := testName("delete"), testName("delete-other")
	c := newCarrier(t, amqp.Config{}, stream, other)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, s := range []string{stream, other} {
		l, err := c.Link(ctx, s, delivery.ProducerEnd)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Send(ctx, []byte("left in the queue")); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	if err := c.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"bridge-test." + stream + ".data", "bridge-test." + stream + ".control"} {
		if queueExists(t, q) {
			t.Errorf("queue %s is still there", q)
		}
	}
	if !queueExists(t, "bridge-test."+other+".data") {
		t.Error("deleting one stream deleted another's queue")
	}
	if err := c.DeleteStream(ctx, stream); err != nil {
		t.Errorf("deleting a deleted stream: %v", err)
	}
	var se *amqp.StreamNameError
	if err := c.DeleteStream(ctx, ""); !errors.As(err, &se) {
		t.Errorf("DeleteStream(\"\") returned %v; want a *StreamNameError", err)
	}
	c.Close()
	if err := c.DeleteStream(ctx, other); !errors.Is(err, amqp.ErrClosed) {
		t.Errorf("DeleteStream on a closed carrier returned %v; want ErrClosed", err)
	}
}

// queueExists reports whether the broker has queue (a passive declare: a
// missing queue closes the admin channel with 404).
func queueExists(t *testing.T, queue string) bool {
	t.Helper()
	exists := false
	withAdminChannel(t, func(ch *amqp091.Channel) {
		_, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		var ae *amqp091.Error
		switch {
		case err == nil:
			exists = true
		case errors.As(err, &ae) && ae.Code == amqp091.NotFound:
		default:
			t.Fatalf("checking queue %s: %v", queue, err)
		}
	})
	return exists
}
