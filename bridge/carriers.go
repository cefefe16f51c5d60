package bridge

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/bridge-mq/bridge/delivery"
)

// transport is a row of the service's carrier registry: a name
// BRIDGE_TRANSPORT takes, the settings of that carrier it checks, and how
// it opens the carrier from the configuration. `bridge run`, the demo and
// the bench all open their carrier through this table, so adding a carrier
// means an adapter package and a row here.
type transport struct {
	name  string
	check func(cfg *Config, c *checker)
	// open returns the carrier and what must stop after it closes (an
	// embedded server), or nil.
	open func(ctx context.Context, cfg *Config, log *slog.Logger) (delivery.Carrier, func(), error)
}

var transports = []transport{
	{name: "tcp", check: (*Config).checkTCP, open: openTCP},
	{name: "nats", check: (*Config).checkNATS, open: openNATS},
	{name: "amqp", check: (*Config).checkAMQP, open: openAMQP},
	{name: "kafka", check: (*Config).checkKafka, open: openKafka},
}

// Transports lists the names BRIDGE_TRANSPORT takes.
func Transports() []string {
	names := make([]string, len(transports))
	for i, t := range transports {
		names[i] = t.name
	}
	return names
}

func transportNamed(name string) (transport, bool) {
	i := slices.IndexFunc(transports, func(t transport) bool { return t.name == name })
	if i < 0 {
		return transport{}, false
	}
	return transports[i], true
}

// Carrier is the carrier BRIDGE_TRANSPORT names, open: the adapter's
// carrier, and what the service started for it. Its optional capabilities
// (delivery.StatusReporter, delivery.StreamDeleter) are the adapter's: find
// them on the embedded Carrier.
type Carrier struct {
	delivery.Carrier
	// Name says what carries the stream, for people: "tcp", "nats core",
	// "nats jetstream", "amqp", "kafka".
	Name string
	stop func()
}

// OpenCarrier connects to the carrier the configuration names (a broker, or
// nothing yet for tcp, which listens and dials as its ends open). cfg must
// have passed validation. Close the Carrier when done: it closes every link
// opened on it.
func OpenCarrier(ctx context.Context, cfg *Config, log *slog.Logger) (*Carrier, error) {
	t, ok := transportNamed(cfg.Transport)
	if !ok {
		return nil, &ConfigError{Var: "BRIDGE_TRANSPORT", Value: cfg.Transport, Reason: "must be one of " + strings.Join(Transports(), ", ")}
	}
	c, stop, err := t.open(ctx, cfg, log.With("transport", cfg.Transport)) // the carriers name the stream themselves
	if err != nil {
		return nil, err
	}
	return &Carrier{Carrier: c, Name: cfg.transportLabel(), stop: stop}, nil
}

// Close closes the carrier, then stops what was started for it.
func (c *Carrier) Close() error {
	err := c.Carrier.Close()
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	return err
}

// DeleteStream removes what stream left on the broker, where the carrier
// keeps anything (queues, topics, a JetStream stream); elsewhere it does
// nothing.
func (c *Carrier) DeleteStream(ctx context.Context, stream string) error {
	if d, ok := c.Carrier.(delivery.StreamDeleter); ok {
		return d.DeleteStream(ctx, stream)
	}
	return nil
}

// transportLabel is the carrier's name for people.
func (cfg *Config) transportLabel() string {
	if cfg.Transport != "nats" {
		return cfg.Transport
	}
	if cfg.NATSJetStream {
		return "nats jetstream"
	}
	return "nats core"
}
