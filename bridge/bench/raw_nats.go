package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/bridge"
)

// natsTarget is NATS: the server at BRIDGE_NATS_URL, or else one embedded
// in this process for the bench (the same server for raw and reliable, a
// new one per transport). With jetstream the carrier carries data frames in
// JetStream, and the raw mode uses JetStream with acknowledgements.
func natsTarget(js bool) func(context.Context, bridge.Config, Config, *slog.Logger) (*target, error) {
	return func(ctx context.Context, cfg bridge.Config, _ Config, log *slog.Logger) (*target, error) {
		return openNATSTarget(ctx, cfg, js, log)
	}
}

func openNATSTarget(ctx context.Context, cfg bridge.Config, js bool, log *slog.Logger) (*target, error) {
	cfg.NATSJetStream = js
	t := &target{name: "nats", cfg: cfg}
	if js {
		t.name = "jetstream"
	}
	where := ""
	if cfg.NATSURL == "" {
		// Like the service's embedded server, it takes only its own clients:
		// the carrier's and the raw ones, given the token as BRIDGE_NATS_TOKEN.
		token := randomSecret()
		srv, err := natscarrier.StartServer(ctx, natscarrier.ServerConfig{Host: "127.0.0.1", StoreDir: cfg.NATSEmbeddedDir, Token: token, Logger: quietLogger(log)})
		if err != nil {
			return nil, fmt.Errorf("starting an embedded NATS server: %w", err)
		}
		t.onClose(srv.Shutdown)
		t.cfg.NATSURL, t.cfg.NATSToken = srv.URL(), token
		where = ", embedded"
	}
	ncfg, err := t.cfg.NATSConfig(log)
	if err != nil {
		t.close()
		return nil, err
	}
	url, opts := ncfg.URL, ncfg.ClientOptions // the carrier's credentials and TLS, for the raw clients
	probe, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench"))...)
	if err != nil {
		t.close()
		return nil, fmt.Errorf("BRIDGE_NATS_URL: %w", err)
	}
	t.broker = "nats-server " + probe.ConnectedServerVersion() + where
	probe.Close() // it was for the server's version
	if err := t.openCarrier(ctx, log); err != nil {
		t.close()
		return nil, err
	}
	prefix := t.cfg.NATSPrefix
	if !js {
		t.competing = natsQueueGroup(url, opts)
		t.client = "nats.go core publish and subscribe, a message per publish"
		t.raw = func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error) {
			return rawNATSCorePipe(url, opts, prefix+"."+stream+".raw", log, deliver)
		}
		return t, nil
	}
	t.competing = jetStreamShared(url, opts, cfg.Window, cfg.WorkerTimeout, log)
	t.client = "nats.go JetStream: asynchronous publishes, each acknowledged; a pull consumer acking each message"
	t.raw = func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error) {
		return rawJetStreamPipe(ctx, url, opts, prefix+"_"+stream, prefix+"."+stream+".raw", log, deliver)
	}
	return t, nil
}

// rawNATSCorePipe publishes each message with nats.go to a subscriber on
// another connection: core NATS, at most once. The subscriber takes
// everything (no pending limit), so the client drops nothing; what the
// server drops shows as lost.
func rawNATSCorePipe(url string, opts []natsgo.Option, subject string, log *slog.Logger, deliver deliverFunc) (*pipe, error) {
	p := &pipe{failed: make(chan error, 1)}
	onErr := natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
		log.Warn("raw nats client", "err", err)
	})
	pub, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench raw publisher"), onErr)...)
	if err != nil {
		return nil, err
	}
	sub, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench raw subscriber"), onErr)...)
	if err != nil {
		pub.Close()
		return nil, err
	}
	closeBoth := func() {
		sub.Close()
		pub.Close()
	}
	s, err := sub.Subscribe(subject, func(m *natsgo.Msg) { deliver(m.Data, time.Now()) })
	if err == nil {
		err = s.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = sub.Flush() // the subscription is in place before the first publish
	}
	if err != nil {
		closeBoth()
		return nil, err
	}
	p.send = func(_ context.Context, msg []byte) error { return pub.Publish(subject, msg) }
	p.flush = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return pub.FlushWithContext(ctx)
	}
	p.close = closeBoth
	return p, nil
}

// rawJetStreamPipe publishes asynchronously to a JetStream stream of its
// own (file storage, work-queue retention, as the carrier's), every
// publish acknowledged by the server, while a pull consumer on another
// connection acks each message after taking it. The stream is deleted on
// close.
func rawJetStreamPipe(ctx context.Context, url string, opts []natsgo.Option, name, subject string, log *slog.Logger, deliver deliverFunc) (*pipe, error) {
	p := &pipe{failed: make(chan error, 1)}
	pubConn, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench raw publisher"))...)
	if err != nil {
		return nil, err
	}
	subConn, err := natsgo.Connect(url, append(opts, natsgo.Name("bridge bench raw consumer"))...)
	if err != nil {
		pubConn.Close()
		return nil, err
	}
	var cc jetstream.ConsumeContext
	var pubJS jetstream.JetStream
	cleanup := func() {
		if cc != nil {
			cc.Stop()
			<-cc.Closed()
		}
		if pubJS != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := pubJS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				log.Warn("raw jetstream: deleting the bench's stream", "stream", name, "err", err)
			}
			cancel()
		}
		subConn.Close()
		pubConn.Close()
	}
	fail := func(err error) (*pipe, error) {
		cleanup()
		return nil, fmt.Errorf("raw jetstream: %w", err)
	}
	pubJS, err = jetstream.New(pubConn, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *natsgo.Msg, err error) {
		p.fail(fmt.Errorf("raw jetstream publish: %w", err))
	}))
	if err != nil {
		return fail(err)
	}
	if _, err := natscarrier.CreateStream(ctx, pubJS, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	}); err != nil {
		return fail(err)
	}
	subJS, err := jetstream.New(subConn)
	if err != nil {
		return fail(err)
	}
	cons, err := subJS.CreateConsumer(ctx, name, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: natscarrier.DefaultMaxAckPending,
	})
	if err != nil {
		return fail(err)
	}
	cc, err = cons.Consume(func(m jetstream.Msg) {
		deliver(m.Data(), time.Now())
		if err := m.Ack(); err != nil {
			p.fail(fmt.Errorf("raw jetstream ack: %w", err))
		}
	}, jetstream.PullMaxBytes(natscarrier.DefaultPullMaxBytes))
	if err != nil {
		return fail(err)
	}
	p.send = func(_ context.Context, msg []byte) error {
		_, err := pubJS.PublishAsync(subject, msg, jetstream.WithStallWait(time.Minute))
		return err
	}
	p.flush = func(ctx context.Context) error {
		select {
		case <-pubJS.PublishAsyncComplete():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("raw jetstream: %d publishes unacknowledged: %w", pubJS.PublishAsyncPending(), ctx.Err())
		}
	}
	p.close = cleanup
	return p, nil
}
