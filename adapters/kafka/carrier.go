package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/bridge-mq/bridge/adapters/internal/linkset"
	"github.com/bridge-mq/bridge/delivery"
	kafkago "github.com/segmentio/kafka-go"
)

// Carrier carries the frames of any number of streams over one Kafka
// cluster, each stream on topics of its own: a delivery.Carrier, which also
// reports its links' connections (delivery.StatusReporter) and deletes a
// stream's topics (delivery.StreamDeleter). It has no connection and starts
// no goroutines of its own; each Link has its own, and Close closes every
// link.
type Carrier struct {
	cfg   Config
	links linkset.Set[*Link]
}

var (
	_ delivery.Carrier        = (*Carrier)(nil)
	_ delivery.StatusReporter = (*Carrier)(nil)
	_ delivery.StreamDeleter  = (*Carrier)(nil)
)

// ConnectError is returned by New when no broker of Config.Brokers could be
// reached and spoken to. Worth retrying when Err is a network error; not
// when it is an authentication failure or a TLS certificate error.
type ConnectError struct {
	Brokers []string
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("kafka: cannot connect to any broker of %s: %v", strings.Join(e.Brokers, ","), e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// New checks cfg and that a broker of cfg.Brokers answers (TLS and SASL
// included), and returns a Carrier. A bad field is a *ConfigError; no broker
// answering is a *ConnectError naming the brokers. ctx bounds the check.
func New(ctx context.Context, cfg Config) (*Carrier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := probe(ctx, &cfg); err != nil {
		return nil, err
	}
	if strings.EqualFold(cfg.SASL.Mechanism, SASLPlain) && cfg.TLS == nil {
		cfg.Logger.Warn("kafka: SASL PLAIN without TLS sends the password in clear")
	}
	return &Carrier{cfg: cfg, links: linkset.Set[*Link]{Carrier: "kafka"}}, nil
}

// probe connects to the brokers in turn until one answers an ApiVersions
// request.
func probe(ctx context.Context, cfg *Config) error {
	mechanism, err := cfg.SASL.mechanism()
	if err != nil {
		return err
	}
	dialer := &kafkago.Dialer{ClientID: cfg.ClientID, Timeout: cfg.DialTimeout, TLS: cfg.TLS, SASLMechanism: mechanism}
	var errs []error
	for _, broker := range cfg.Brokers {
		conn, err := dialer.DialContext(ctx, "tcp", broker)
		if err == nil {
			if dl, ok := ctx.Deadline(); ok {
				conn.SetDeadline(dl)
			}
			_, err = conn.ApiVersions()
			conn.Close()
			if err == nil {
				return nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", broker, err))
		if ctx.Err() != nil {
			break
		}
	}
	return &ConnectError{Brokers: cfg.Brokers, Err: errors.Join(errs...)}
}

// Link opens one end of stream: it creates the stream's topics if they are
// missing (and the broker allows), then, for the consumer end, reads the
// group's committed offset and starts reading the data topic from there (from
// its first offset if nothing was committed); for the producer end, starts
// reading the control topic from its current end. A frame the other end sends
// after Link returned is not missed. ctx bounds this setup; the link lives
// until Close.
//
// The stream's name goes into topic names: ASCII letters, digits, '.', '_'
// and '-' only (a *StreamNameError otherwise). Run one consumer end per
// stream at a time: the carrier does not enforce it.
func (c *Carrier) Link(ctx context.Context, stream string, end delivery.End) (*Link, error) {
	if end != delivery.ProducerEnd && end != delivery.ConsumerEnd {
		return nil, fmt.Errorf("kafka: link: unknown end %v", end)
	}
	if c.links.Closed() {
		return nil, ErrClosed
	}
	l, err := openLink(ctx, c, stream, end)
	if err != nil {
		return nil, err
	}
	if !c.links.Add(l) {
		l.Close()
		return nil, ErrClosed
	}
	return l, nil
}

// OpenLink is Link, for delivery.Carrier.
func (c *Carrier) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	return linkset.Opened(c.Link(ctx, stream, end))
}

// Status sums the carrier's links, as the carrier has no connection of its
// own: connected while every open link is (so also while none is open), the
// reconnects of every link it opened, closed ones included, and while a
// link is down, why. After Close it reports ErrClosed.
func (c *Carrier) Status() delivery.LinkStatus { return c.links.Status(ErrClosed) }

// Close closes every link of the carrier, at once, and waits for them (each
// spends at most Config.CloseTimeout on its last writes and commit). Links
// cannot be opened afterwards. Idempotent.
func (c *Carrier) Close() error {
	var wg sync.WaitGroup
	for _, l := range c.links.Close() {
		wg.Go(func() { l.Close() })
	}
	wg.Wait()
	return nil
}

// DeleteStream deletes a stream's topics and, when Config.GroupID names a
// group of its own for the stream, that group: for retiring a stream, and for
// tests on a shared broker. Close the stream's links first. Topics or a
// group already gone are not an error.
func (c *Carrier) DeleteStream(ctx context.Context, stream string) error {
	cfg := &c.cfg
	data, control, group, err := cfg.streamNames(stream)
	if err != nil {
		return err
	}
	mechanism, err := cfg.SASL.mechanism()
	if err != nil {
		return err
	}
	conns := newConnTracker(cfg.DialTimeout, cfg.Logger)
	defer conns.close()
	transport := &kafkago.Transport{
		Dial: conns.dialFunc(false), DialTimeout: cfg.DialTimeout, MetadataTopics: []string{data, control},
		ClientID: cfg.ClientID, TLS: cfg.TLS, SASL: mechanism,
	}
	defer transport.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: transport, Timeout: cfg.RequestTimeout}

	var errs []error
	res, err := client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{data, control}})
	if err != nil {
		return fmt.Errorf("kafka: delete the topics of stream %q: %w", stream, err)
	}
	for topic, err := range res.Errors {
		if err != nil && !errors.Is(err, kafkago.UnknownTopicOrPartition) {
			errs = append(errs, &TopicError{Topic: topic, Err: err})
		}
	}
	if strings.Contains(cfg.GroupID, StreamPlaceholder) {
		res, err := client.DeleteGroups(ctx, &kafkago.DeleteGroupsRequest{GroupIDs: []string{group}})
		if err != nil {
			errs = append(errs, fmt.Errorf("kafka: delete group %q: %w", group, err))
		} else if err := res.Errors[group]; err != nil && !errors.Is(err, kafkago.GroupIdNotFound) {
			errs = append(errs, fmt.Errorf("kafka: delete group %q: %w", group, err))
		}
	}
	return errors.Join(errs...)
}
