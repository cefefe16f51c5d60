package amqp

import (
	"unicode/utf8"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Queue name suffixes: a stream's data queue carries the producer's frames
// to the consumer, its control queue the consumer's frames back.
const (
	dataSuffix    = ".data"
	controlSuffix = ".control"
)

// queueNames returns a stream's data and control queues.
func queueNames(cfg *Config, stream string) (data, control string, err error) {
	switch {
	case stream == "":
		return "", "", &StreamNameError{Stream: stream, Reason: "empty"}
	case !utf8.ValidString(stream):
		return "", "", &StreamNameError{Stream: stream, Reason: "not UTF-8"}
	case len(cfg.QueuePrefix)+len(stream)+len(controlSuffix) > maxNameLen:
		return "", "", &StreamNameError{Stream: stream, Reason: "too long: a queue name is at most 255 bytes, QueuePrefix and suffix included"}
	}
	base := cfg.QueuePrefix + stream
	return base + dataSuffix, base + controlSuffix, nil
}

// queueArgs are the arguments of the queues the carrier declares. Single
// active consumer: a second end attached to the same queue (a restarted
// process whose predecessor the broker has not dropped yet) waits as a
// standby instead of taking every other frame, which would break order.
func queueArgs(cfg *Config) amqp091.Table {
	args := amqp091.Table{"x-single-active-consumer": true}
	if cfg.QueueType != "" {
		args["x-queue-type"] = cfg.QueueType
	}
	return args
}

// declare declares queue on ch, with the exchange and the binding when the
// carrier publishes through one; with cfg.Passive it only checks that they
// exist. A failure is a *DeclareError, and the broker has closed ch.
func declare(ch *amqp091.Channel, cfg *Config, queue string) error {
	if cfg.Passive {
		if cfg.Exchange != "" {
			if err := ch.ExchangeDeclarePassive(cfg.Exchange, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
				return &DeclareError{Kind: "exchange", Name: cfg.Exchange, Err: err}
			}
		}
		if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
			return &DeclareError{Kind: "queue", Name: queue, Err: err}
		}
		return nil
	}
	if cfg.Exchange != "" {
		if err := ch.ExchangeDeclare(cfg.Exchange, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
			return &DeclareError{Kind: "exchange", Name: cfg.Exchange, Err: err}
		}
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, queueArgs(cfg)); err != nil {
		return &DeclareError{Kind: "queue", Name: queue, Err: err}
	}
	if cfg.Exchange != "" {
		if err := ch.QueueBind(queue, queue, cfg.Exchange, false, nil); err != nil {
			return &DeclareError{Kind: "binding", Name: cfg.Exchange + " -> " + queue, Err: err}
		}
	}
	return nil
}
