package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// jsHeaderRoom is what a JetStream data frame leaves of max_payload for
// its headers: "NATS/1.0\r\nNats-Msg-Id: <id>\r\n\r\n" with an id of at
// most 36 bytes takes 63; the rest is margin.
const jsHeaderRoom = 128

// newJetStream returns the JetStream context of a link's connection.
func (l *Link) newJetStream() (jetstream.JetStream, error) {
	j := &l.carrier.cfg.JetStream
	return jetstream.New(l.conn.nc,
		jetstream.WithPublishAsyncTimeout(j.PublishAckTimeout),
		// The link bounds what is pending itself (and waits within ctx);
		// this only keeps the client from stalling first.
		jetstream.WithPublishAsyncMaxPending(j.MaxPendingFrames+64),
	)
}

// streamConfig is the JetStream stream the carrier creates for a bridge
// stream: it takes the stream's data subject, keeps each frame until the
// consumer acks it (work-queue retention), and drops a resent copy of a
// frame by its Nats-Msg-Id within the duplicate window.
func (l *Link) streamConfig() jetstream.StreamConfig {
	j := &l.carrier.cfg.JetStream
	sc := jetstream.StreamConfig{
		Name:        l.names.jsStream,
		Description: "bridge: data frames of stream " + l.key.stream,
		Subjects:    []string{l.names.data},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     j.Storage,
		Replicas:    j.Replicas,
		MaxAge:      j.MaxAge,
		MaxBytes:    j.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  j.DuplicateWindow,
	}
	if sc.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	if sc.MaxAge > 0 && sc.Duplicates > sc.MaxAge {
		sc.Duplicates = sc.MaxAge // the server refuses a window beyond the age limit
	}
	if j.EditStream != nil {
		j.EditStream(&sc)
	}
	return sc
}

// consumerConfig is the durable pull consumer of a bridge stream: every
// frame from the start, each acked on its own, delivered again after
// AckWait if neither acked nor kept alive.
func (l *Link) consumerConfig() jetstream.ConsumerConfig {
	j := &l.carrier.cfg.JetStream
	cc := jetstream.ConsumerConfig{
		Durable:       j.Durable,
		Description:   "bridge: consumer end of stream " + l.key.stream,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       j.AckWait,
		MaxDeliver:    -1,
		FilterSubject: l.names.data,
		MaxAckPending: j.MaxAckPending,
	}
	if j.EditConsumer != nil {
		j.EditConsumer(&cc)
	}
	return cc
}

// ensureStream creates the link's JetStream stream if it is missing, or
// takes the existing one as it is. It returns the largest frame the stream
// takes.
func (l *Link) ensureStream(ctx context.Context, js jetstream.JetStream) (maxFrame int, err error) {
	sc := l.streamConfig()
	s, err := CreateStream(ctx, js, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// It exists with other settings: an operator's, or an earlier
		// configuration's. Use it as it is, if it takes our subject.
		if s, err = js.Stream(ctx, sc.Name); err == nil {
			if !slices.Contains(s.CachedInfo().Config.Subjects, l.names.data) {
				return 0, fmt.Errorf("nats: jetstream stream %s exists and does not take subject %s", sc.Name, l.names.data)
			}
			l.log.Info("nats: using the existing jetstream stream as it is", "jetstream_stream", sc.Name)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("nats: create jetstream stream %s: %w", sc.Name, err)
	}
	maxFrame = int(l.conn.nc.MaxPayload()) - jsHeaderRoom
	if m := int(s.CachedInfo().Config.MaxMsgSize); m > 0 {
		maxFrame = min(maxFrame, m-jsHeaderRoom)
	}
	return maxFrame, nil
}

// CreateStream is js.CreateStream made safe from a nats-server race: the
// server removes an account's emptied store directories in the background
// after a stream is deleted, which can pull them from under a stream being
// created at the same moment (error 10049, "error creating store for
// stream"). CreateStream tries again, a few times, when that is the error.
// The carrier creates its streams with it; so can a client of its own that
// creates and deletes streams next to it.
func CreateStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateStream(ctx, sc)
	for attempt := 1; attempt < 5 && isStoreRace(err); attempt++ {
		select {
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s, err = js.CreateStream(ctx, sc)
	}
	return s, err
}

// ensureConsumer creates the link's durable consumer if it is missing, or
// takes the existing one as it is.
func (l *Link) ensureConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cc := l.consumerConfig()
	cons, err := js.CreateConsumer(ctx, l.names.jsStream, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		if cons, err = js.Consumer(ctx, l.names.jsStream, cc.Durable); err == nil {
			l.log.Info("nats: using the existing jetstream consumer as it is", "jetstream_stream", l.names.jsStream, "consumer", cc.Durable)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nats: create jetstream consumer %s on stream %s: %w", cc.Durable, l.names.jsStream, err)
	}
	return cons, nil
}

// errCodeStreamCreate is nats-server's JSStreamCreateErrF, which nats.go
// names no constant for.
const errCodeStreamCreate jetstream.ErrorCode = 10049

// isStoreRace reports whether err is the server's failure to create a
// stream's store, which a stream deleted at the same moment can cause.
func isStoreRace(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamCreate &&
		strings.Contains(apiErr.Description, "error creating store for stream")
}
