package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/memory"
	"github.com/bridge-mq/bridge/delivery"
)

// TestHeaders: headers travel with their messages through loss,
// duplication and reordering, chunked or not, names in lower case; a
// message sent without them arrives without them.
func TestHeaders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, _ := memory.NewPipe(memory.Options{Faults: memory.Faults{Seed: 5, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1}})
	ps := fastProducer
	ps.ProducerID, ps.ChunkSize = "p", 1000
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, ps)
	consumer, _ := delivery.NewConsumerController[[]byte](pipe.Consumer(), nil, fastConsumer)
	waitP, waitC := run(t, ctx, producer), run(t, ctx, consumer)
	const n = 300
	headersOf := func(i int) delivery.Headers {
		if i%3 == 0 {
			return nil
		}
		return delivery.Headers{
			{Name: "Content-Type", Value: "application/json"},
			{Name: "traceparent", Value: fmt.Sprintf("00-%032x-%016x-01", i, i)},
			{Name: "Bridge-Meta-Tenant", Value: strings.Repeat("t", i%50)},
		}
	}
	go func() {
		for i := range n {
			size := 16
			if i%7 == 0 {
				size = 3500 // four chunks, the headers on the first
			}
			if _, _, err := producer.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: adaptertest.Payload(i, size), Headers: headersOf(i)}); err != nil {
				return
			}
		}
	}()
	for i := range n {
		d, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := adaptertest.Index(d.Message); got != i {
			t.Fatalf("message %d, want %d", got, i)
		}
		want := headersOf(i)
		if len(d.Headers) != len(want) {
			t.Fatalf("message %d: headers %v, want %v", i, d.Headers, want)
		}
		for k, h := range want {
			if d.Headers[k].Name != strings.ToLower(h.Name) || d.Headers[k].Value != h.Value {
				t.Fatalf("message %d: header %d is %+v, want %+v (name in lower case)", i, k, d.Headers[k], h)
			}
		}
		if v, ok := d.Headers.Get("CONTENT-TYPE"); want != nil && (!ok || v != "application/json") {
			t.Errorf("message %d: Get is not case-insensitive: %q %v", i, v, ok)
		}
		d.Confirm()
	}
	if st := producer.Stats(); st.Resent == 0 {
		t.Log("no resends: the faults did not bite")
	}
	producer.Close()
	consumer.Close()
	waitP()
	waitC()
}

// TestHeaderLimits: headers past the limits are refused at Send with a
// *HeaderError, and the message is not taken.
func TestHeaderLimits(t *testing.T) {
	pipe, _ := memory.NewPipe(memory.Options{})
	producer, _ := delivery.NewProducerController[[]byte](pipe.Producer(), nil, delivery.ProducerSettings{ProducerID: "p"})
	defer producer.Close()
	many := make(delivery.Headers, delivery.MaxHeaders+1)
	for i := range many {
		many[i] = delivery.Header{Name: fmt.Sprint("h", i), Value: "v"}
	}
	for name, h := range map[string]delivery.Headers{
		"too many":        many,
		"too large":       {{Name: "big", Value: strings.Repeat("x", delivery.MaxHeaderBytes)}},
		"an empty name":   {{Name: "", Value: "v"}},
		"a name with ':'": {{Name: "a:b", Value: "v"}},
		"a long name":     {{Name: strings.Repeat("n", delivery.MaxHeaderName+1), Value: "v"}},
		"a control char":  {{Name: "n", Value: "a\nb"}},
		"not UTF-8":       {{Name: "n", Value: "\xff"}},
	} {
		_, _, err := producer.SendMessage(context.Background(), delivery.Outgoing[[]byte]{Message: []byte("m"), Headers: h, NoWait: true})
		var he *delivery.HeaderError
		if !errors.As(err, &he) {
			t.Errorf("%s: %v; want a *HeaderError", name, err)
		}
	}
	if st := producer.Stats(); st.AcceptedSeqNr != 0 {
		t.Errorf("refused messages were taken: %+v", st)
	}
}
