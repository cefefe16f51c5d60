// Package amqp carries the delivery protocol's frames over RabbitMQ with
// AMQP 0-9-1 (github.com/rabbitmq/amqp091-go): the queue-backed carrier,
// where the broker keeps every frame until the far end is done with it.
//
// # Topology
//
// A stream S has two durable queues, declared by whichever end links first
// (and again after every reconnect or cancel), or only checked with
// Config.Passive:
//
//	producer end --publish--> [<prefix>S.data]    --consume--> consumer end
//	producer end <--consume-- [<prefix>S.control] <--publish-- consumer end
//
// Frames go to the default exchange with the queue's name as routing key,
// or to Config.Exchange (a durable direct exchange the queues are bound to
// under their names). The queues are single-active-consumer: a second end
// attached to a stream waits as a standby until the first goes, rather
// than splitting the frames and their order with it. The queues outlive
// the links: retiring a stream deletes them (Carrier.DeleteStream).
//
// A Carrier (New) is the package's delivery.Carrier: Link (or OpenLink,
// behind the interface) opens an end of a stream, Status reports the
// carrier's connections, and DeleteStream deletes a stream's queues. It
// holds two connections, one that publishes and one that consumes, as
// RabbitMQ advises: a broker under a resource alarm blocks the publishing
// connection, and must not hold up the acks with it. Each Link opens a
// channel on each.
//
// # What is acked when
//
// Publishing: data frames are persistent, control frames transient (the
// consumer repeats its requests on a timer, so they are soft state). Every
// frame is published as mandatory on a channel in confirm mode, with up to
// Config.MaxPendingConfirms awaiting their confirms at once (deferred
// confirmations, resolved in order; Send blocks beyond the bound). A frame
// is forgotten once the broker confirms it. A negative confirm, a confirm
// lost with its channel, or a return (the frame could not be routed: the
// queue is gone) makes the publisher open a fresh channel, declare the
// queue again, and publish every frame still awaiting a confirm again, in
// order: the far end may get duplicates, which the protocol drops, and
// does not get gaps.
//
// Consuming: manual acks. A frame is acked when the consumer controller
// calls its Frame.Release, which it does once every message in the frame
// has been confirmed by the application (or dropped as a duplicate). A
// frame never released goes back to the queue when its channel closes: a
// closed link, a broken connection. The broker then delivers it again to
// the next consumer, in its place in the queue.
//
// The prefetch (Config.Prefetch) counts frames, the protocol's window
// counts messages. The controller holds a frame until all of its messages
// are confirmed, and every frame it holds carries at least one message
// inside its window (duplicates and stale frames are released at once), so
// it never holds more than Window frames: a prefetch of at least the
// consumer's Window never withholds a frame it waits for. Under load a
// frame batches many messages, and far fewer frames are in flight.
//
// # Reconnecting
//
// Each connection has a keeper goroutine that notices its loss
// (NotifyClose) and dials again, at once and then with a doubling wait
// from Config.ReconnectMin to ReconnectMax, forever until Close, logging
// each loss and attempt. A link whose channel closes (with its connection,
// or by a channel error) opens a new channel on the current connection,
// declares its queue again and resumes: the publisher publishes again
// what awaited a confirm, the subscriber consumes again. A consumer the
// broker cancels (NotifyCancel: its queue was deleted) is handled the same
// way, which recreates the queue; with Config.Passive the queue is only
// checked, and the link logs an error and retries until the operator
// restores it, while Send refuses frames with the reason. Receive blocks
// across all of this; Send blocks once MaxPendingConfirms frames wait,
// which is soon while disconnected. Status reports the state and counts
// the channels re-opened; Stats counts republished, returned and
// redelivered frames. A broker restart is a lost connection like any
// other; the durable queues and persistent data frames survive it.
//
// The carrier does its own reconnecting instead of amqp091-go's automatic
// recovery (Config.Recovery, since v1.12), because that recovery reopens
// the same *amqp091.Channel in place: the delivery tags restart at 1, so a
// Release of a frame delivered before the break would ack, on the
// recovered channel, whatever unrelated frame now holds that tag, and the
// broker would forget a frame the consumer never confirmed. Here a new
// session is a new *amqp091.Channel, and a stale Release fails harmlessly
// on the closed one (the broker has already requeued its frame). The
// library's recovery also gives up after a fixed number of attempts
// (5, 5 s apart, by default) and logs through a package-level logger;
// the carrier needs to retry until it is closed and to log through its
// own slog.Logger. Publisher confirm tags restarting on a new channel and
// pending confirms resolving as lost need handling either way.
//
// Every Notify channel the carrier registers is buffered and drained (the
// library drops an event a listener leaves waiting for 5 s): returns have
// room for every pending frame, closes and cancels for their single event,
// and the keeper drains the broker's blocked/unblocked notices and logs
// them.
//
// # Goroutines
//
// A Carrier runs one goroutine per connection (two); each Link runs two
// more, a publisher and a subscriber, each owning one AMQP channel. The
// library runs its own per connection and per consumer. Link.Close stops
// and waits for the link's goroutines; Carrier.Close closes every link,
// then the connections, and waits for all. A frame's Release acks on the
// consuming connection and returns quickly; it must not be called more
// than once.
//
// # Work pulling
//
// Each worker of a work-pulling stream has a stream of its own,
// <stream>_w_<worker ID>, with its own two queues, so a worker's frames
// reach only it (RabbitMQ's own competing consumers are not used: the
// protocol does the dispatch); workers say hello through the stream's
// control queue. A departed worker is noticed by its leave, or by the
// silence of its heartbeats. Each worker ID leaves its two queues.
package amqp
