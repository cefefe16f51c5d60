package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
)

// httpSink POSTs each message to a webhook and confirms it on a 2xx
// answer. Any other answer, or none, is retried with backoff, from 100 ms
// up to retryMax, for as long as it takes: a message is never dropped. A
// redirect is not followed (Go would follow a 302 with a GET without the
// body, and a 200 to that would confirm a message nobody received): it is a
// failed attempt like any other answer but a 2xx. Each request names the
// message (X-Bridge-Producer-Id, X-Bridge-Producer-Epoch, X-Bridge-Seq-Nr)
// so the receiver can drop the repeats at-least-once delivery brings after
// a restart. The URL's user info and query (credentials, a token) appear in
// no log and no error: shown is its redacted form.
type httpSink struct {
	url      string
	shown    string // url, redacted
	client   *http.Client
	retryMax time.Duration
	log      *slog.Logger
	// The webhook's failures are counted (bridge_sink_failures_total) and
	// logged at most once per throttleEvery, as is its recovery.
	failures          atomic.Uint64
	failed, recovered *throttle
}

func newHTTPSink(cfg *Config, log *slog.Logger) *httpSink {
	client := &http.Client{
		Timeout: cfg.SinkTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // the 3xx itself is the answer
		},
	}
	return &httpSink{url: cfg.SinkURL, shown: redact(cfg.SinkURL), client: client, retryMax: cfg.SinkRetryMax, log: log,
		failed: newThrottle(), recovered: newThrottle()}
}

func (*httpSink) batchSize() int { return 1 }

func (s *httpSink) failedAttempts() uint64 { return s.failures.Load() }

func (s *httpSink) handle(ctx context.Context, batch []delivery.Delivery[[]byte]) error {
	for _, d := range batch {
		if err := s.deliver(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// deliver POSTs d until a 2xx answer, or until ctx ends.
func (s *httpSink) deliver(ctx context.Context, d delivery.Delivery[[]byte]) error {
	wait := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: s.retryMax})
	for attempt := 1; ; attempt++ {
		err := s.post(ctx, d)
		if err == nil {
			if attempt > 1 {
				s.recovered.do(func(held int) {
					s.log.Info("webhook accepted the message", "seq_nr", d.SeqNr, "attempts", attempt, "held_back", held)
				})
			}
			return nil
		}
		s.failures.Add(1)
		pause := wait.Next()
		s.failed.do(func(held int) {
			s.log.Warn("webhook failed; retrying", "seq_nr", d.SeqNr, "attempt", attempt, "retry_in", pause, "err", err, "held_back", held)
		})
		if !backoff.Sleep(ctx, pause) {
			return fmt.Errorf("message %d unconfirmed after %d attempts: %w", d.SeqNr, attempt, ctx.Err())
		}
	}
}

func (s *httpSink) post(ctx context.Context, d delivery.Delivery[[]byte]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(d.Message))
	if err != nil {
		return fmt.Errorf("POST %s: the URL does not parse", s.shown) // validation parsed it; the error would show it
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Bridge-Producer-Id", d.ProducerID)
	req.Header.Set("X-Bridge-Producer-Epoch", strconv.FormatUint(d.ProducerEpoch, 10))
	req.Header.Set("X-Bridge-Seq-Nr", strconv.FormatUint(uint64(d.SeqNr), 10))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it holds the URL, unredacted
		}
		return fmt.Errorf("POST %s: %w", s.shown, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 3:
		return fmt.Errorf("%s answered %s, a redirect, which is not followed: point BRIDGE_SINK_URL at where it leads", s.shown, resp.Status)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%s answered %s", s.shown, resp.Status)
	}
	return nil
}
