package amqp

import amqp091 "github.com/rabbitmq/amqp091-go"

// PublishChannel and ConsumeChannel expose the link's current AMQP
// channels (nil between sessions), so that tests can make the broker
// close them.
func (l *Link) PublishChannel() *amqp091.Channel { return l.out.channel.Load() }
func (l *Link) ConsumeChannel() *amqp091.Channel { return l.in.channel.Load() }
