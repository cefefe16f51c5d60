package bridge

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridge-mq/bridge/delivery"
)

// Reasons a message is dead-lettered: the label of bridge_dead_letters_total.
const (
	ReasonRefused  = "refused"  // the webhook answered 4xx (not 408 or 429): it will never take it
	ReasonAttempts = "attempts" // BRIDGE_SINK_MAX_ATTEMPTS failed attempts (no answer, 5xx, 408, 429, a redirect)
)

// DeadLetter is one record of a dead-letter queue, as `bridge dlq list`
// prints it and a file:// queue keeps it: one JSON line. A queue on a
// broker keeps the same JSON as a message's body.
type DeadLetter struct {
	Time     time.Time `json:"time"`             // when it was dead-lettered
	Reason   string    `json:"reason"`           // ReasonRefused or ReasonAttempts
	Attempts int       `json:"attempts"`         // POSTs that carried it
	Status   int       `json:"status,omitempty"` // the last HTTP status; none if there was no answer
	Error    string    `json:"error"`            // the last failure
	Metadata Metadata  `json:"metadata"`
	// Message is the message when it is UTF-8; MessageBase64 when not.
	Message       *string `json:"message,omitempty"`
	MessageBase64 []byte  `json:"message_base64,omitempty"`

	ref uint64 // where the queue keeps it: a JetStream sequence, a Kafka offset, an AMQP delivery tag
}

// Metadata is what the consumer knew of a dead letter's delivery.
type Metadata struct {
	Stream     string         `json:"stream"`
	ProducerID string         `json:"producer_id"`
	Epoch      uint64         `json:"epoch"`
	SeqNr      uint64         `json:"seq_nr"`
	Headers    []headerRecord `json:"headers,omitempty"`
}

type headerRecord struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func newDeadLetter(stream string, d delivery.Delivery[[]byte], reason string, attempts, status int, err error) DeadLetter {
	dl := DeadLetter{
		Time: time.Now().UTC(), Reason: reason, Attempts: attempts, Status: status,
		Metadata: Metadata{Stream: stream, ProducerID: d.ProducerID, Epoch: d.ProducerEpoch, SeqNr: uint64(d.SeqNr)},
	}
	if err != nil {
		dl.Error = err.Error()
	}
	for _, h := range d.Headers {
		dl.Metadata.Headers = append(dl.Metadata.Headers, headerRecord{Name: h.Name, Value: h.Value})
	}
	if utf8.Valid(d.Message) {
		s := string(d.Message)
		dl.Message = &s
	} else {
		dl.MessageBase64 = d.Message
	}
	return dl
}

// Body is the dead letter's message.
func (dl *DeadLetter) Body() []byte {
	if dl.Message != nil {
		return []byte(*dl.Message)
	}
	return dl.MessageBase64
}

// headers are the dead letter's headers, for a producer that sends it again.
func (dl *DeadLetter) headers() delivery.Headers {
	var h delivery.Headers
	for _, x := range dl.Metadata.Headers {
		h = append(h, delivery.Header{Name: x.Name, Value: x.Value})
	}
	return h
}

// key names the delivery a dead letter was: a message redelivered after a
// restart is the same delivery, and is recorded once.
func (dl *DeadLetter) key() string {
	m := &dl.Metadata
	return m.ProducerID + "/" + strconv.FormatUint(m.Epoch, 10) + "/" + strconv.FormatUint(m.SeqNr, 10)
}

// deadLetterQueue is where the consumer's sink records what it gives up
// on, and what `bridge dlq` reads: one stream's dead letters in a
// directory (fileDLQ) or on the stream's broker (see openDLQ). Its
// methods may be called from several goroutines.
type deadLetterQueue interface {
	// record returns once dls are recorded for good: synced to disk, or
	// acknowledged by the broker as stored. A delivery recorded before
	// (the same key) may be left out.
	record(ctx context.Context, dls []DeadLetter) error
	// stats counts the dead letters waiting and finds the oldest's time.
	stats() (waiting int, oldest time.Time, err error)
	// list returns the dead letters waiting, oldest first, each delivery
	// once, and how many records could not be read (left as they are).
	list(ctx context.Context) (records []DeadLetter, bad int, err error)
	// remove takes away dead letters list returned, once replayed and
	// confirmed, in the order list gave them.
	remove(ctx context.Context, dls []DeadLetter) error
	// tidy is called once a replay has ended: the queue may reclaim the
	// room of what was removed.
	tidy(ctx context.Context) error
	Close() error
	String() string
}

// The forms of BRIDGE_DLQ but file:///dir: the dead-letter stream on the
// stream's own broker, named after the stream or as given.
const (
	dlqCarrier       = "carrier"
	dlqCarrierPrefix = "carrier:"
)

// dlqCarrierName returns the name of the dead-letter stream a carrier
// BRIDGE_DLQ names, and whether it names one: "carrier" is STREAM.dlq.
func (cfg *Config) dlqCarrierName() (string, bool) {
	switch {
	case cfg.DLQ == dlqCarrier:
		return cfg.Stream + ".dlq", true
	case strings.HasPrefix(cfg.DLQ, dlqCarrierPrefix):
		return strings.TrimPrefix(cfg.DLQ, dlqCarrierPrefix), true
	}
	return "", false
}

// openDLQ opens the dead-letter queue BRIDGE_DLQ names, or returns nil
// without one. cfg passed validation.
func openDLQ(ctx context.Context, cfg *Config, log *slog.Logger) (deadLetterQueue, error) {
	if cfg.DLQ == "" {
		return nil, nil
	}
	name, ok := cfg.dlqCarrierName()
	if !ok {
		return openFileDLQ(dlqDir(cfg.DLQ), cfg.Stream)
	}
	switch cfg.Transport {
	case "nats":
		return openJetStreamDLQ(ctx, cfg, name, log)
	case "kafka":
		return openKafkaDLQ(ctx, cfg, name, log)
	case "amqp":
		return openAMQPDLQ(ctx, cfg, name, log)
	}
	return nil, &ConfigError{Var: "BRIDGE_DLQ", Value: cfg.DLQ, Reason: "a dead-letter stream on the carrier needs nats, amqp or kafka"}
}
