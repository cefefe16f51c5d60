package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// httpSource serves POST /v1/messages: the body is the message, or, with
// Content-Type application/x-ndjson, each line of it is one (see
// postBatch). The answer
// is 202 once the producer took it, or, with a durable queue, once it is
// stored and synced (it then survives a crash of this process); with
// ?confirm=true, 200 once the consumer confirmed it, however long that
// takes (the server's timeouts bound the request's arrival, not this wait).
// When the consumer's window is full it answers 503 with Retry-After at
// once, before reading the body, rather than buffer without bound.
type httpSource struct {
	p        sendingProducer
	m        *metrics
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
	if isNDJSON(r.Header.Get("Content-Type")) {
		h.postBatch(w, r, body)
		return
	}
	at := time.Now()
	c, err := h.p.TrySendWithConfirmation(body)
	switch {
	case errors.Is(err, delivery.ErrNoDemand):
		full(w)
		return
	case errors.Is(err, delivery.ErrClosed):
		httpError(w, http.StatusServiceUnavailable, "the producer is stopping")
		return
	case errors.As(err, new(*delivery.MessageTooLargeError)):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError, err.Error())
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

// isNDJSON reports whether a Content-Type is application/x-ndjson.
func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-ndjson"
}

// postBatch takes each line of body as a message (a line end is "\n" or
// "\r\n"; empty lines are skipped), all of them or none: 202 with the
// first and last sequence numbers once taken (with a durable queue, once
// all are stored), with ?confirm=true 200 once the consumer confirmed all;
// 503 with Retry-After when the window cannot take them all now; 413 for
// more than BRIDGE_HTTP_BATCH_MAX lines (the body's bytes are bounded by
// BRIDGE_MAX_MESSAGE_SIZE before it is read).
func (h *httpSource) postBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	msgs := make([][]byte, 0, min(h.batchMax, bytes.Count(body, []byte{'\n'})+1))
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if len(msgs) == h.batchMax {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than BRIDGE_HTTP_BATCH_MAX (%d) lines", h.batchMax))
			return
		}
		msgs = append(msgs, line)
	}
	if len(msgs) == 0 {
		httpError(w, http.StatusBadRequest, "an application/x-ndjson body with no line")
		return
	}
	at := time.Now()
	cs, err := h.p.TrySendAllWithConfirmation(msgs)
	switch {
	case errors.Is(err, delivery.ErrNoDemand):
		full(w)
		return
	case errors.Is(err, delivery.ErrClosed):
		httpError(w, http.StatusServiceUnavailable, "the producer is stopping")
		return
	case errors.As(err, new(*delivery.MessageTooLargeError)):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError, err.Error())
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

// full answers that the consumer's window is full: 503, retry in a second.
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
