package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	kafkago "github.com/segmentio/kafka-go"
)

// Link is one end of a stream over Kafka: a delivery.Link. The producer end
// writes data frames to the stream's data topic and reads control frames
// from its control topic; the consumer end does the reverse, and commits its
// offset in the data topic as the consumer controller releases frames.
//
// A Link starts two goroutines (the reader, from FetchMessage to Receive,
// and the writer), three on the consumer end (the committer), plus those of
// its kafka-go Reader and Transport; Close waits for its own. Release (on
// frames the consumer end receives) only takes a lock and may be called
// from any goroutine.
type Link struct {
	carrier      *Carrier
	cfg          *Config
	stream       string
	end          delivery.End
	dataTopic    string
	controlTopic string
	group        string
	maxFrame     int
	log          *slog.Logger

	conns     *connTracker
	transport *kafkago.Transport
	client    *kafkago.Client
	sender    *sender
	receiver  *receiver
	committer *committer // consumer end only

	done      chan struct{} // closed when Close starts
	closing   chan struct{} // tells the committer to make its last commit
	cancelRun context.CancelFunc
	cancelRd  context.CancelFunc
	readWG    sync.WaitGroup // the receiver
	runWG     sync.WaitGroup // the sender and the committer
	closeOnce sync.Once
}

// metadataTTL bounds how long a link's Transport routes by a cached cluster
// layout: after a partition's leader moved, writes fail until it refreshes.
// kafka-go's default is 6 s; a link asks only about its two topics, so
// asking more often costs little.
const metadataTTL = 2 * time.Second

var (
	_ delivery.Link             = (*Link)(nil)
	_ delivery.FrameSizeLimiter = (*Link)(nil)
	_ delivery.StatusReporter   = (*Link)(nil)
)

// openLink makes the stream's topics if need be, finds where to read from,
// and starts the link.
func openLink(ctx context.Context, c *Carrier, stream string, end delivery.End) (*Link, error) {
	cfg := &c.cfg
	data, control, group, err := cfg.streamNames(stream)
	if err != nil {
		return nil, err
	}
	mechanism, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("stream", stream, "end", end.String())
	conns := newConnTracker(cfg.DialTimeout, log)
	transport := &kafkago.Transport{
		Dial:           conns.dialFunc(false),
		DialTimeout:    cfg.DialTimeout,
		MetadataTTL:    metadataTTL,
		MetadataTopics: []string{data, control},
		ClientID:       cfg.ClientID,
		TLS:            cfg.TLS,
		SASL:           mechanism,
	}
	l := &Link{
		carrier: c, cfg: cfg, stream: stream, end: end,
		dataTopic: data, controlTopic: control, group: group, log: log,
		conns: conns, transport: transport,
		client:  &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: transport},
		done:    make(chan struct{}),
		closing: make(chan struct{}),
	}
	fail := func(err error) (*Link, error) {
		conns.close() // first, as in Close
		transport.CloseIdleConnections()
		return nil, err
	}
	if err := l.ensureTopics(ctx); err != nil {
		return fail(err)
	}
	maxBytes := l.maxMessageBytes(ctx)
	l.maxFrame = maxBytes - recordOverhead

	in, out := control, data
	var start int64
	if end == delivery.ConsumerEnd {
		in, out = data, control
		committed, err := l.committedOffset(ctx)
		if err != nil {
			return fail(fmt.Errorf("kafka: read the committed offset of group %q in topic %q: %w", group, data, err))
		}
		start = kafkago.FirstOffset
		if committed >= 0 {
			start = committed
		}
		l.committer = &committer{
			client: l.client, group: group, topic: data, tracker: newReleaseTracker(), cfg: cfg, log: log,
			lastOffset: committed,
		}
		log.Debug("kafka: consumer end starts", "topic", data, "group", group, "committed", committed)
	} else {
		// Control frames from before this producer end are for an earlier
		// one; the consumer repeats what a new producer needs to hear.
		if start, err = l.endOffset(ctx, control); err != nil {
			return fail(fmt.Errorf("kafka: read the end offset of topic %q: %w", control, err))
		}
	}
	reader, err := newReader(cfg, conns, in, maxBytes, start, log)
	if err != nil {
		return fail(err)
	}
	l.sender = newSender(l.client, out, cfg, maxBytes, log, l.ensureTopics)
	l.receiver = &receiver{reader: reader, topic: in, log: log, ensureTopics: l.ensureTopics, frames: make(chan delivery.Frame)}
	l.receiver.firstOffset.Store(-1)
	l.receiver.lastOffset.Store(-1)
	if l.committer != nil {
		l.receiver.tracker = l.committer.tracker
	}

	runCtx, cancelRun := context.WithCancel(context.Background())
	readCtx, cancelRd := context.WithCancel(context.Background())
	l.cancelRun, l.cancelRd = cancelRun, cancelRd
	l.readWG.Add(1)
	go func() {
		defer l.readWG.Done()
		l.receiver.run(readCtx)
	}()
	l.runWG.Add(1)
	go func() {
		defer l.runWG.Done()
		l.sender.run(runCtx)
	}()
	if l.committer != nil {
		l.runWG.Add(1)
		go func() {
			defer l.runWG.Done()
			l.committer.run(runCtx, l.closing)
		}()
	}
	return l, nil
}

// Send queues frame for the other end and returns; it blocks while
// Config.SendBufferBytes of frames wait for the broker's acknowledgement
// (so while the broker is away, once the buffer is full), until ctx ends.
// Frames are written in order and retried until the broker takes them. A
// frame over MaxFrameSize (the broker would refuse it) is refused with a
// *delivery.FrameTooLargeError; it is not taken and the link stays usable.
// After Close, Send returns an error wrapping delivery.ErrLinkClosed.
func (l *Link) Send(ctx context.Context, frame []byte) error {
	select {
	case <-l.done:
		return fmt.Errorf("kafka: send: %w", delivery.ErrLinkClosed)
	default:
	}
	if len(frame) > l.maxFrame {
		return &delivery.FrameTooLargeError{Carrier: "kafka", Size: len(frame), Limit: l.maxFrame}
	}
	return l.sender.send(ctx, frame)
}

// Receive waits for the next frame from the other end, across reconnects,
// until ctx ends or the link is closed (an error wrapping
// delivery.ErrLinkClosed). On the consumer end the frame carries a Release:
// the link commits its offset once it and every frame before it were
// released. On the producer end it carries none.
func (l *Link) Receive(ctx context.Context) (delivery.Frame, error) {
	select {
	case <-l.done:
		return delivery.Frame{}, fmt.Errorf("kafka: receive: %w", delivery.ErrLinkClosed)
	default:
	}
	select {
	case f := <-l.receiver.frames:
		return f, nil
	case <-l.done:
		return delivery.Frame{}, fmt.Errorf("kafka: receive: %w", delivery.ErrLinkClosed)
	case <-ctx.Done():
		return delivery.Frame{}, ctx.Err()
	}
}

// MaxFrameSize is the largest frame Send takes: the smaller of
// Config.MaxMessageBytes and the topics' max.message.bytes, less 512 bytes
// of record overhead.
func (l *Link) MaxFrameSize() int { return l.maxFrame }

// Status reports whether the link's connections to the brokers are up, how
// many times they came back after a loss, and while they are down, the
// failure that took them down.
func (l *Link) Status() delivery.LinkStatus { return l.conns.status() }

// Stream is the name of the link's stream.
func (l *Link) Stream() string { return l.stream }

// End is the end of the stream the link serves.
func (l *Link) End() delivery.End { return l.end }

// Close stops the link: Send and Receive return errors wrapping
// delivery.ErrLinkClosed from then on. It stops reading, then spends up to
// Config.CloseTimeout writing the frames Send already took and, on the
// consumer end, committing the offset of the frames already released.
// Frames received and not released stay in the topic: the next consumer end
// reads them again. Close waits for the link's goroutines; it is
// idempotent.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.sender.close()
		l.cancelRd()
		l.conns.closeReaders() // a fetch waiting at the broker ends now
		l.readWG.Wait()
		l.receiver.reader.Close()
		close(l.closing)
		deadline := time.AfterFunc(l.cfg.CloseTimeout, l.cancelRun)
		l.runWG.Wait()
		deadline.Stop()
		l.cancelRun()
		// The connections first: a request still in flight on one (kafka-go's
		// own metadata refresh) fails and its goroutine ends, where one
		// released to the idle pool after CloseIdleConnections would stay.
		l.conns.close()
		l.transport.CloseIdleConnections()
		l.carrier.links.Remove(l)
	})
	return nil
}
