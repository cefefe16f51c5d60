package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
)

// replayStep is the most dead letters replayed at once: one NDJSON POST,
// or sent before their confirmations are awaited.
const replayStep = 100

// ListDLQ writes every dead letter of BRIDGE_DLQ for the stream to
// env.Stdout, oldest first, a JSON line each (the DeadLetter record), and
// a summary to env.Stderr: `bridge dlq list`. cfg passed ValidateDLQ.
func ListDLQ(ctx context.Context, cfg Config, env Env) error {
	q, err := openDLQ(ctx, &cfg, env.Log)
	if err != nil {
		return err
	}
	defer q.Close()
	records, bad, err := q.list(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetEscapeHTML(false)
	var oldest time.Time
	for i := range records {
		if err := enc.Encode(&records[i]); err != nil {
			return err
		}
		if oldest.IsZero() || records[i].Time.Before(oldest) {
			oldest = records[i].Time
		}
	}
	summary := fmt.Sprintf("%d dead letters of stream %q in %s", len(records), cfg.Stream, q)
	if len(records) > 0 {
		summary += ", the oldest from " + oldest.Format(time.RFC3339)
	}
	if bad > 0 {
		summary += fmt.Sprintf("; %d records that do not parse, left as they are", bad)
	}
	fmt.Fprintln(env.Stderr, summary)
	return nil
}

// ReplayDLQ sends every dead letter of BRIDGE_DLQ for the stream back
// through the stream, oldest first, and removes each from the queue once
// it is confirmed: `bridge dlq replay`. They go to BRIDGE_DLQ_REPLAY_URL
// (a producer's POST /v1/messages, ?confirm=true, a batch of lines at a
// time where the messages hold no line end), or, without one, from this
// process as the stream's producer (BRIDGE_PRODUCER_ID over
// BRIDGE_TRANSPORT; a stream has one producer at a time, so stop the
// usual one first: it takes the stream back when it starts again). What
// was there when it started is replayed: a message the sink gives up on
// again is a new dead letter, left for the next replay. A stop (ctx ends)
// or a failure leaves what was not confirmed in the queue. cfg passed
// ValidateDLQ(true).
func ReplayDLQ(ctx context.Context, cfg Config, env Env) error {
	log := env.Log.With("stream", cfg.Stream)
	q, err := openDLQ(ctx, &cfg, env.Log)
	if err != nil {
		return err
	}
	defer q.Close()
	records, _, err := q.list(ctx)
	if err != nil {
		return err
	}
	if len(records) == 0 {
		fmt.Fprintf(env.Stdout, "no dead letters of stream %q in %s\n", cfg.Stream, q)
		return nil
	}
	var target replayTarget
	if cfg.DLQReplayURL != "" {
		target = newHTTPReplay(&cfg)
	} else if target, err = openProducerReplay(ctx, &cfg, log); err != nil {
		return err
	}
	replayed, err := replay(ctx, q, records, target)
	if cerr := target.close(ctx); err == nil {
		err = cerr
	}
	if cerr := q.tidy(ctx); err == nil {
		err = cerr
	}
	fmt.Fprintf(env.Stdout, "replayed %d of %d dead letters of stream %q to %s\n", replayed, len(records), cfg.Stream, target)
	return err
}

func replay(ctx context.Context, q deadLetterQueue, records []DeadLetter, target replayTarget) (int, error) {
	replayed := 0
	for len(records) > 0 {
		n := target.step(records)
		if err := target.send(ctx, records[:n]); err != nil {
			return replayed, err
		}
		if err := q.remove(ctx, records[:n]); err != nil {
			return replayed, err
		}
		replayed += n
		records = records[n:]
	}
	return replayed, nil
}

// replayTarget is where dead letters are replayed to.
type replayTarget interface {
	// step says how many of records, from the first, go at once.
	step(records []DeadLetter) int
	// send returns once the consumer confirmed all of records.
	send(ctx context.Context, records []DeadLetter) error
	close(ctx context.Context) error
	String() string
}

// httpReplay POSTs dead letters to a producer's HTTP API.
type httpReplay struct {
	url, shown, token string
	client            *http.Client
}

func newHTTPReplay(cfg *Config) *httpReplay {
	u, _ := url.Parse(cfg.DLQReplayURL) // validation parsed it
	query := u.Query()
	query.Set("confirm", "true")
	u.RawQuery = query.Encode()
	return &httpReplay{url: u.String(), shown: redact(cfg.DLQReplayURL), token: cfg.HTTPToken, client: &http.Client{}}
}

func (h *httpReplay) String() string { return h.shown }

func (h *httpReplay) step(records []DeadLetter) int {
	n := 0
	for n < len(records) && n < replayStep && !plain(records[n].Body()) {
		n++
	}
	return max(n, 1)
}

func (h *httpReplay) send(ctx context.Context, records []DeadLetter) error {
	// Each goes with its metadata, as the HTTP source takes it (see
	// metadata.go): its headers, or its line's in the envelope form.
	var body []byte
	var single delivery.Headers
	contentType := ""
	if len(records) == 1 && plain(records[0].Body()) {
		body, single = records[0].Body(), records[0].headers()
	} else {
		body, contentType = ndjsonBody(nil, len(records), func(i int) ([]byte, delivery.Headers) {
			return records[i].Body(), records[i].headers()
		})
	}
	wait := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second})
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("POST %s: the URL does not parse", h.shown)
		}
		if contentType == "" {
			setRequestHeaders(req.Header, single)
		} else {
			req.Header.Set("Content-Type", contentType)
		}
		if h.token != "" {
			req.Header.Set("Authorization", "Bearer "+h.token)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // it holds the URL, unredacted
			}
			return fmt.Errorf("POST %s: %w", h.shown, err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			// The window is full: as asked, try again.
			pause := wait.Next()
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				pause = time.Duration(s) * time.Second
			}
			if !backoff.Sleep(ctx, pause) {
				return ctx.Err()
			}
		default:
			return fmt.Errorf("%s answered %s: %s", h.shown, resp.Status, bytes.TrimSpace(answer))
		}
	}
}

func (h *httpReplay) close(context.Context) error { return nil }

// producerReplay sends dead letters as the stream's producer.
type producerReplay struct {
	car  *Carrier
	p    *delivery.ProducerController[[]byte]
	ran  chan error
	name string
}

func openProducerReplay(ctx context.Context, cfg *Config, log *slog.Logger) (*producerReplay, error) {
	car, err := OpenCarrier(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	// No durable queue: the dead-letter queue keeps each message until it
	// is confirmed.
	p, _, err := newProducer(ctx, car, cfg, cfg.ProducerSettings(log), log)
	if err != nil {
		car.Close()
		return nil, err
	}
	r := &producerReplay{car: car, p: p, ran: make(chan error, 1),
		name: fmt.Sprintf("stream %q as producer %q over %s", cfg.Stream, cfg.ProducerID, car.Name)}
	go func() { r.ran <- p.Run(context.Background()) }()
	log.Info("replaying as the stream's producer", "producer_id", cfg.ProducerID, "epoch", p.Epoch())
	return r, nil
}

func (r *producerReplay) String() string { return r.name }

func (r *producerReplay) step(records []DeadLetter) int { return min(len(records), replayStep) }

func (r *producerReplay) send(ctx context.Context, records []DeadLetter) error {
	cs := make([]*delivery.Confirmation, len(records))
	for i := range records {
		_, c, err := r.p.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: records[i].Body(), Headers: records[i].headers(), Confirm: true})
		if err != nil {
			return err
		}
		cs[i] = c
	}
	for _, c := range cs {
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *producerReplay) close(ctx context.Context) error {
	r.p.Shutdown(ctx) // everything sent was confirmed
	err := <-r.ran
	r.car.Close()
	return err
}
