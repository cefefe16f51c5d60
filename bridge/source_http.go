package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bridge-mq/bridge/delivery"
)

// httpSource serves POST /v1/messages: the body is the message, or, with
// Content-Type application/x-ndjson, each line of it is one (see
// postBatch). The request's Content-Type, traceparent, tracestate and
// Bridge-Meta-* headers go with the message as its headers (see
// metadata.go); past their limits the answer is 400. The answer
// is 202 once the producer took it, or, with a durable queue, once it is
// stored and synced (it then survives a crash of this process); with
// ?confirm=true, 200 once the consumer confirmed it, however long that
// takes (the server's timeouts bound the request's arrival, not this wait).
// When the consumer's window is full it answers 503 with Retry-After at
// once, before reading the body, rather than buffer without bound.
type httpSource struct {
	p        sendingProducer
	m        *metrics
	tr       *tracer
	durable  bool
	maxSize  int
	batchMax int
	log      *slog.Logger
}

// batchAnswer is the JSON body of a successful NDJSON POST.
type batchAnswer struct {
	Count      int            `json:"count"`
	FirstSeqNr delivery.SeqNr `json:"first_seq_nr"`
	LastSeqNr  delivery.SeqNr `json:"last_seq_nr"`
	Stored     bool           `json:"stored"`
	Confirmed  bool           `json:"confirmed"`
}

// messageAnswer is the JSON body of a successful POST.
type messageAnswer struct {
	SeqNr     delivery.SeqNr `json:"seq_nr"`
	Stored    bool           `json:"stored"`    // in the durable queue: survives a crash
	Confirmed bool           `json:"confirmed"` // the consumer confirmed it
}

func (h *httpSource) run(ctx context.Context, _ *sender) error {
	<-ctx.Done() // the HTTP server feeds the producer; nothing ends this input
	return ctx.Err()
}

func (h *httpSource) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", h.post)
	return mux
}

func (h *httpSource) post(w http.ResponseWriter, r *http.Request) {
	if h.p.Demand() == 0 {
		// Before the body is read: a full window costs no upload. The
		// connection closes after the answer rather than wait for a body
		// the client may not send until it has one.
		w.Header().Set("Connection", "close")
		full(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.maxSize)))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		httpError(w, http.StatusRequestEntityTooLarge, "the body exceeds BRIDGE_MAX_MESSAGE_SIZE")
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	ndjson, envelopes, err := ndjsonForm(r.Header.Get("Content-Type"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if ndjson {
		h.postBatch(w, r, body, envelopes)
		return
	}
	at := time.Now()
	span, hs := h.tr.produce(r.Context(), requestHeaders(r.Header, true))
	_, c, err := h.p.SendMessage(context.Background(), delivery.Outgoing[[]byte]{Message: body, Headers: hs, Confirm: true, NoWait: true})
	produced(span, h.p.ID(), seqNrOf(c), err)
	if refused(w, err) {
		return
	}
	answer := messageAnswer{SeqNr: c.SeqNr()}
	if h.durable {
		if err := c.WaitStored(r.Context()); err != nil {
			// Taken, but not known to be on disk: say so, not 202.
			httpError(w, http.StatusServiceUnavailable, "the message was taken but not stored: "+err.Error())
			return
		}
		answer.Stored = true
	}
	if r.URL.Query().Get("confirm") != "true" {
		writeJSON(w, http.StatusAccepted, answer)
		return
	}
	// The body is in (and net/http has cleared the read deadline): the
	// wait for the consumer is the client's to bound, not the server's
	// write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	if err := c.Wait(r.Context()); err != nil {
		if errors.As(err, new(*delivery.MessageTooLargeError)) {
			// Taken before the consumer said what it takes: refused, not lost.
			httpError(w, http.StatusRequestEntityTooLarge, "the consumer refused the message: "+err.Error())
			return
		}
		httpError(w, http.StatusServiceUnavailable, "the message was taken, not yet confirmed: "+err.Error())
		return
	}
	h.m.observe(time.Since(at))
	answer.Confirmed = true
	writeJSON(w, http.StatusOK, answer)
}

// seqNrOf is c's sequence number, 0 for none.
func seqNrOf(c *delivery.Confirmation) delivery.SeqNr {
	if c == nil {
		return 0
	}
	return c.SeqNr()
}

// postBatch takes each line of body as a message (a line end is "\n" or
// "\r\n"; empty lines are skipped), or with envelopes each line's body
// with its headers (see metadata.go; a line that is not one is answered
// 400, naming it), all of them or none: 202 with the
// first and last sequence numbers once taken (with a durable queue, once
// all are stored), with ?confirm=true 200 once the consumer confirmed all;
// 503 with Retry-After when the window cannot take them all now; 413 for
// more than BRIDGE_HTTP_BATCH_MAX lines (the body's bytes are bounded by
// BRIDGE_MAX_MESSAGE_SIZE before it is read).
func (h *httpSource) postBatch(w http.ResponseWriter, r *http.Request, body []byte, envelopes bool) {
	lines, err := ndjsonLines(body, h.batchMax)
	var tooMany *tooManyLinesError
	switch {
	case errors.As(err, &tooMany):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	base := requestHeaders(r.Header, false) // every line's
	msgs := make([]delivery.Outgoing[[]byte], len(lines))
	for i, line := range lines {
		msgs[i] = delivery.Outgoing[[]byte]{Message: line, Headers: base}
		if envelopes {
			if msgs[i].Message, msgs[i].Headers, err = openEnvelope(line, base); err != nil {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("line %d: %v", i+1, err))
				return
			}
		}
	}
	at := time.Now()
	spans := h.traceBatch(r.Context(), msgs)
	cs, err := h.p.TrySendAllMessages(msgs)
	for i, span := range spans {
		var seqNr delivery.SeqNr
		if err == nil {
			seqNr = cs[i].SeqNr()
		}
		produced(span, h.p.ID(), seqNr, err)
	}
	if refused(w, err) {
		return
	}
	answer := batchAnswer{Count: len(cs), FirstSeqNr: cs[0].SeqNr(), LastSeqNr: cs[len(cs)-1].SeqNr()}
	if h.durable {
		for _, c := range cs {
			if err := c.WaitStored(r.Context()); err != nil {
				httpError(w, http.StatusServiceUnavailable, "the messages were taken but not stored: "+err.Error())
				return
			}
		}
		answer.Stored = true
	}
	if r.URL.Query().Get("confirm") != "true" {
		writeJSON(w, http.StatusAccepted, answer)
		return
	}
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	for i, c := range cs {
		if err := c.Wait(r.Context()); err != nil {
			if errors.As(err, new(*delivery.MessageTooLargeError)) {
				httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the consumer refused line %d: %v", i+1, err))
				return
			}
			httpError(w, http.StatusServiceUnavailable, "the messages were taken, not yet all confirmed: "+err.Error())
			return
		}
	}
	h.m.observe(time.Since(at))
	answer.Confirmed = true
	writeJSON(w, http.StatusOK, answer)
}

// traceBatch starts each line's producer span, with tracing: the lines
// then carry their spans' contexts. It returns nil without tracing.
func (h *httpSource) traceBatch(ctx context.Context, msgs []delivery.Outgoing[[]byte]) []trace.Span {
	if h.tr == nil {
		return nil
	}
	spans := make([]trace.Span, len(msgs))
	for i := range msgs {
		// Each line's headers are its own to change: base is shared.
		spans[i], msgs[i].Headers = h.tr.produce(ctx, slices.Clone(msgs[i].Headers))
	}
	return spans
}

// full answers that the consumer's window is full: 503, retry in a second.
// refused answers a send that failed with the status that says why, and
// reports whether it did: 503 while there is no demand or the producer
// stops, 413 over the size limit, 400 for headers past their limits.
func refused(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, delivery.ErrNoDemand):
		full(w)
	case errors.Is(err, delivery.ErrClosed):
		httpError(w, http.StatusServiceUnavailable, "the producer is stopping")
	case errors.As(err, new(*delivery.MessageTooLargeError)):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.As(err, new(*delivery.HeaderError)):
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		httpError(w, http.StatusInternalServerError, err.Error())
	}
	return true
}

func full(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	httpError(w, http.StatusServiceUnavailable, "the consumer's window is full; retry later")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
