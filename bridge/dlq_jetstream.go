package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetStreamDLQ keeps dead letters in a JetStream stream of their own
// (BRIDGE_DLQ=carrier with BRIDGE_TRANSPORT=nats, core or JetStream alike:
// the server must have JetStream), on file storage: a message a dead
// letter, its body the DeadLetter's JSON, its Nats-Msg-Id the delivery's
// key, so that the server drops a repeat within its duplicate window (a
// consumer killed between the record and the confirmation); list drops
// any older repeat. record returns once the server acknowledged each
// (stored); remove deletes the messages replayed. It starts no goroutine
// of its own (the NATS connection runs its own).
type jetStreamDLQ struct {
	nc      *natsgo.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	name    string
	timeout time.Duration

	mu     sync.Mutex
	oldest struct { // of stats: the first message's dead letter's time
		seq uint64
		at  time.Time
	}
}

// jetStreamDLQName is the JetStream stream of a dead-letter stream: its
// name with what a stream name cannot hold as '_'.
func jetStreamDLQName(prefix, name string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r == ' ' || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, prefix+"_"+name)
}

func openJetStreamDLQ(ctx context.Context, cfg *Config, name string, log *slog.Logger) (*jetStreamDLQ, error) {
	ncfg, err := cfg.NATSConfig(log)
	if err != nil {
		return nil, err
	}
	url := ncfg.URL
	if url == "" { // the embedded server, which the carrier started or found
		url = "nats://" + cfg.NATSEmbeddedAddr
		token, _, err := cfg.embeddedNATSToken(embeddedPort(cfg.NATSEmbeddedAddr))
		if err != nil {
			return nil, err
		}
		ncfg.ClientOptions = append(ncfg.ClientOptions, natsgo.Token(token))
	}
	opts := append([]natsgo.Option{natsgo.Name("bridge " + cfg.Stream + " dlq"), natsgo.MaxReconnects(-1)}, ncfg.ClientOptions...)
	nc, err := natsgo.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: connecting to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	q := &jetStreamDLQ{nc: nc, js: js, subject: cfg.NATSPrefix + ".dlq." + name, name: jetStreamDLQName(cfg.NATSPrefix, name), timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	q.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        q.name,
		Description: "bridge: dead letters of stream " + cfg.Stream,
		Subjects:    []string{q.subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("dead-letter stream: JetStream stream %s: %w", q.name, err)
	}
	return q, nil
}

func (q *jetStreamDLQ) String() string { return "JetStream stream " + q.name }

func (q *jetStreamDLQ) Close() error {
	q.nc.Close()
	return nil
}

func (q *jetStreamDLQ) record(ctx context.Context, dls []DeadLetter) error {
	for i := range dls {
		body, err := json.Marshal(&dls[i])
		if err != nil {
			return err
		}
		msg := natsgo.NewMsg(q.subject)
		msg.Data = body
		msg.Header.Set(jetstream.MsgIDHeader, dls[i].key())
		pctx, cancel := context.WithTimeout(ctx, q.timeout)
		_, err = q.js.PublishMsg(pctx, msg)
		cancel()
		if err != nil {
			return fmt.Errorf("dead-letter stream %s: %w", q.name, err)
		}
	}
	return nil
}

func (q *jetStreamDLQ) stats() (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	info, err := q.stream.Info(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	if info.State.Msgs == 0 {
		return 0, time.Time{}, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.oldest.seq != info.State.FirstSeq {
		// The dead letter's own time: the store's is later after a replay
		// that dead-lettered it again.
		m, err := q.stream.GetMsg(ctx, info.State.FirstSeq)
		if err != nil {
			return 0, time.Time{}, err
		}
		var dl DeadLetter
		if json.Unmarshal(m.Data, &dl) != nil {
			dl.Time = m.Time
		}
		q.oldest.seq, q.oldest.at = info.State.FirstSeq, dl.Time
	}
	return int(info.State.Msgs), q.oldest.at, nil
}

func (q *jetStreamDLQ) list(ctx context.Context) ([]DeadLetter, int, error) {
	info, err := q.stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("dead-letter stream %s: %w", q.name, err)
	}
	var records []DeadLetter
	bad := 0
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := q.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed
		}
		if err != nil {
			return nil, 0, fmt.Errorf("dead-letter stream %s: message %d: %w", q.name, seq, err)
		}
		var dl DeadLetter
		if json.Unmarshal(m.Data, &dl) != nil {
			bad++
			continue
		}
		dl.ref = m.Sequence
		if seen[dl.key()] {
			q.stream.DeleteMsg(ctx, seq) // a repeat the duplicate window let through
			continue
		}
		seen[dl.key()] = true
		records = append(records, dl)
	}
	return records, bad, nil
}

func (q *jetStreamDLQ) remove(ctx context.Context, dls []DeadLetter) error {
	for i := range dls {
		if err := q.stream.DeleteMsg(ctx, dls[i].ref); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("dead-letter stream %s: removing message %d: %w", q.name, dls[i].ref, err)
		}
	}
	return nil
}

func (q *jetStreamDLQ) tidy(context.Context) error { return nil }
