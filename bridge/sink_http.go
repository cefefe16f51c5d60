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

// httpSink POSTs messages to a webhook and confirms them on a 2xx answer.
//
// With BRIDGE_SINK_BATCH above 1, it POSTs up to that many messages in one
// request, one line each (Content-Type application/x-ndjson), with headers
// naming the producer and the first and last sequence numbers; a 2xx
// confirms them all. A message no NDJSON line can carry as it is (empty,
// holding a line end, or ending in a carriage return) goes alone, as a
// plain POST. A request carries the messages of one producer lifetime
// only.
//
// Any answer but a 2xx, or none, is a failed attempt, retried with backoff
// from 100 ms up to retryMax. A redirect is not followed (Go would follow a
// 302 with a GET without the body, and a 200 to that would confirm a
// message nobody received): it is a failed attempt like any other.
//
// Without a dead-letter queue a message is never dropped: it is retried for
// as long as it takes. With one (BRIDGE_DLQ), a message the webhook refuses
// (a 4xx other than 408 and 429) is dead-lettered at once, and one that
// failed maxAttempts times is dead-lettered then; a batch refused, or
// failed maxAttempts times, is split in two halves, each sent on its own
// (a half that failed for want of an answer gets one more try before it is
// split again), so only the message at fault is dead-lettered and the
// others arrive, in order. The dead letters of a batch are recorded (synced
// to disk, or taken by the broker) before the batch is confirmed; a queue
// that cannot record them stops the consumer with that error, and nothing
// of the batch is confirmed.
//
// Each request names what it carries (X-Bridge-Producer-Id,
// X-Bridge-Producer-Epoch, X-Bridge-Seq-Nr or X-Bridge-First-Seq-Nr and
// X-Bridge-Last-Seq-Nr) so the receiver can drop the repeats at-least-once
// delivery brings after a restart. A message's metadata goes with it (see
// metadata.go): a plain POST has its Content-Type (default
// application/octet-stream), traceparent, tracestate and Bridge-Meta-*
// headers; a batch any of whose messages has metadata is in the envelope
// form, each line with its own. The URL's user info and query
// (credentials, a token) appear in no log and no error: shown is its
// redacted form.
type httpSink struct {
	url         string
	shown       string // url, redacted
	client      *http.Client
	retryMax    time.Duration
	batch       int
	maxAttempts int
	dlq         deadLetterQueue // nil: retry for ever
	stream      string
	log         *slog.Logger
	body        []byte                 // the NDJSON body being built; one request at a time
	tries       map[delivery.SeqNr]int // with tracing: the last batch's attempts, by message
	// The webhook's failures are counted (bridge_sink_failures_total) and
	// logged at most once per throttleEvery, as are its recovery and the
	// dead letters.
	failures          atomic.Uint64
	deadLettered      [2]atomic.Uint64 // refused, attempts
	failed, recovered *throttle
	dead              *throttle
}

func newHTTPSink(cfg *Config, dlq deadLetterQueue, log *slog.Logger) *httpSink {
	client := &http.Client{
		Timeout: cfg.SinkTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // the 3xx itself is the answer
		},
	}
	return &httpSink{url: cfg.SinkURL, shown: redact(cfg.SinkURL), client: client, retryMax: cfg.SinkRetryMax, log: log,
		batch: cfg.SinkBatch, maxAttempts: cfg.SinkMaxAttempts, dlq: dlq, stream: cfg.Stream,
		failed: newThrottle(), recovered: newThrottle(), dead: newThrottle()}
}

func (s *httpSink) batchSize() int { return s.batch }

func (s *httpSink) failedAttempts() uint64 { return s.failures.Load() }

// deadLetters reports the messages dead-lettered, by reason.
func (s *httpSink) deadLetters() map[string]uint64 {
	return map[string]uint64{ReasonRefused: s.deadLettered[0].Load(), ReasonAttempts: s.deadLettered[1].Load()}
}

// attempts reports how many POSTs carried a message of the last batch.
func (s *httpSink) attempts(seqNr delivery.SeqNr) int { return s.tries[seqNr] }

// tried records, with tracing, that msgs were done with after tries POSTs.
func (s *httpSink) tried(msgs []delivery.Delivery[[]byte], tries int) {
	if s.tries != nil {
		for _, d := range msgs {
			s.tries[d.SeqNr] = tries
		}
	}
}

func (s *httpSink) handle(ctx context.Context, batch []delivery.Delivery[[]byte]) error {
	if s.tries != nil {
		clear(s.tries)
	}
	var dead []DeadLetter
	for len(batch) > 0 {
		n := s.request(batch)
		if err := s.deliver(ctx, batch[:n], 0, 0, &dead); err != nil {
			return err
		}
		batch = batch[n:]
	}
	if len(dead) == 0 {
		return nil
	}
	if err := s.dlq.record(ctx, dead); err != nil {
		return fmt.Errorf("dead-letter queue %s cannot record %d messages (nothing of the batch is confirmed): %w", s.dlq, len(dead), err)
	}
	for i := range dead {
		if dead[i].Reason == ReasonRefused {
			s.deadLettered[0].Add(1)
		} else {
			s.deadLettered[1].Add(1)
		}
	}
	s.dead.do(func(held int) {
		dl := &dead[len(dead)-1]
		s.log.Warn("message dead-lettered", "seq_nr", dl.Metadata.SeqNr, traceID(dl.headers()), "reason", dl.Reason, "attempts", dl.Attempts,
			"status", dl.Status, "err", dl.Error, "dlq", s.dlq.String(), "held_back", held+len(dead)-1)
	})
	return nil
}

// request returns how many of batch, from its start, go in one request:
// up to batchSize messages of one producer lifetime, none that is plain
// but alone.
func (s *httpSink) request(batch []delivery.Delivery[[]byte]) int {
	if s.batch == 1 || plain(batch[0].Message) {
		return 1
	}
	n := 1
	for n < len(batch) && n < s.batch && batch[n].ProducerID == batch[0].ProducerID &&
		batch[n].ProducerEpoch == batch[0].ProducerEpoch && !plain(batch[n].Message) {
		n++
	}
	return n
}

// deliver POSTs msgs until a 2xx answer, until ctx ends, or, with a
// dead-letter queue, until it gives up on them: then it splits them, or
// adds the one message to dead. used is the attempts already spent of
// maxAttempts, tries the POSTs that carried msgs before.
func (s *httpSink) deliver(ctx context.Context, msgs []delivery.Delivery[[]byte], used, tries int, dead *[]DeadLetter) error {
	wait := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: s.retryMax})
	for attempt := 1; ; attempt++ {
		status, err := s.post(ctx, msgs)
		if err == nil {
			s.tried(msgs, tries+attempt)
			if attempt > 1 {
				s.recovered.do(func(held int) {
					s.log.Info("webhook accepted the message", "seq_nr", msgs[len(msgs)-1].SeqNr, traceID(msgs[len(msgs)-1].Headers), "messages", len(msgs), "attempts", attempt, "held_back", held)
				})
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("message %d unconfirmed after %d attempts: %w", msgs[0].SeqNr, attempt, ctx.Err())
		}
		s.failures.Add(1)
		if s.dlq != nil {
			refused := status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
			if refused || used+attempt >= s.maxAttempts {
				if len(msgs) > 1 {
					next := s.maxAttempts - 1 // one more try for each half
					if refused {
						next = 0
					}
					half := len(msgs) / 2
					if err := s.deliver(ctx, msgs[:half], next, tries+attempt, dead); err != nil {
						return err
					}
					return s.deliver(ctx, msgs[half:], next, tries+attempt, dead)
				}
				reason := ReasonAttempts
				if refused {
					reason = ReasonRefused
				}
				*dead = append(*dead, newDeadLetter(s.stream, msgs[0], reason, tries+attempt, status, err))
				s.tried(msgs, tries+attempt)
				return nil
			}
		}
		pause := wait.Next()
		s.failed.do(func(held int) {
			s.log.Warn("webhook failed; retrying", "seq_nr", msgs[0].SeqNr, traceID(msgs[0].Headers), "messages", len(msgs), "attempt", attempt, "retry_in", pause, "err", err, "held_back", held)
		})
		if !backoff.Sleep(ctx, pause) {
			return fmt.Errorf("message %d unconfirmed after %d attempts: %w", msgs[0].SeqNr, attempt, ctx.Err())
		}
	}
}

// post sends msgs in one request, and returns the answer's status (0 for
// none) and, unless it is a 2xx, why it failed.
func (s *httpSink) post(ctx context.Context, msgs []delivery.Delivery[[]byte]) (int, error) {
	first, last := msgs[0], msgs[len(msgs)-1]
	body, batched := first.Message, s.batch > 1 && !plain(first.Message)
	var contentType string
	if batched {
		s.body, contentType = ndjsonBody(s.body[:0], len(msgs), func(i int) ([]byte, delivery.Headers) {
			return msgs[i].Message, msgs[i].Headers
		})
		body = s.body
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("POST %s: the URL does not parse", s.shown) // validation parsed it; the error would show it
	}
	if batched {
		req.Header.Set("Content-Type", contentType)
	} else {
		setRequestHeaders(req.Header, first.Headers)
	}
	req.Header.Set("X-Bridge-Producer-Id", first.ProducerID)
	req.Header.Set("X-Bridge-Producer-Epoch", strconv.FormatUint(first.ProducerEpoch, 10))
	if batched {
		req.Header.Set("X-Bridge-First-Seq-Nr", strconv.FormatUint(uint64(first.SeqNr), 10))
		req.Header.Set("X-Bridge-Last-Seq-Nr", strconv.FormatUint(uint64(last.SeqNr), 10))
		req.Header.Set("X-Bridge-Count", strconv.Itoa(len(msgs)))
	} else {
		req.Header.Set("X-Bridge-Seq-Nr", strconv.FormatUint(uint64(first.SeqNr), 10))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it holds the URL, unredacted
		}
		return 0, fmt.Errorf("POST %s: %w", s.shown, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 3:
		return resp.StatusCode, fmt.Errorf("%s answered %s, a redirect, which is not followed: point BRIDGE_SINK_URL at where it leads", s.shown, resp.Status)
	case resp.StatusCode/100 != 2:
		return resp.StatusCode, fmt.Errorf("%s answered %s", s.shown, resp.Status)
	}
	return resp.StatusCode, nil
}
