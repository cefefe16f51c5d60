package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/backoff"
)

// httpSink POSTs each message to a webhook and confirms it on a 2xx
// answer. Any other answer, or none, is retried with backoff, from 100 ms
// up to retryMax, for as long as it takes: a message is never dropped. Each
// request names the message (X-Bridge-Producer-Id, X-Bridge-Producer-Epoch,
// X-Bridge-Seq-Nr) so the receiver can drop the repeats at-least-once
// delivery brings after a restart.
type httpSink struct {
	url      string
	client   *http.Client
	retryMax time.Duration
	log      *slog.Logger
}

func newHTTPSink(cfg *Config, log *slog.Logger) *httpSink {
	return &httpSink{url: cfg.SinkURL, client: &http.Client{Timeout: cfg.SinkTimeout}, retryMax: cfg.SinkRetryMax, log: log}
}

func (*httpSink) batchSize() int { return 1 }

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
				s.log.Info("webhook accepted the message", "seq_nr", d.SeqNr, "attempts", attempt)
			}
			return nil
		}
		pause := wait.Next()
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("webhook failed; retrying", "seq_nr", d.SeqNr, "attempt", attempt, "retry_in", pause, "err", err)
		}
		if !backoff.Sleep(ctx, pause) {
			return fmt.Errorf("message %d unconfirmed after %d attempts: %w", d.SeqNr, attempt, ctx.Err())
		}
	}
}

func (s *httpSink) post(ctx context.Context, d delivery.Delivery[[]byte]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(d.Message))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Bridge-Producer-Id", d.ProducerID)
	req.Header.Set("X-Bridge-Producer-Epoch", strconv.FormatUint(d.ProducerEpoch, 10))
	req.Header.Set("X-Bridge-Seq-Nr", strconv.FormatUint(uint64(d.SeqNr), 10))
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", s.url, resp.Status)
	}
	return nil
}
