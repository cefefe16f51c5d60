package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// httpSource serves POST /v1/messages: the body is the message. The answer
// is 202 once the producer took it, or, with a durable queue, once it is
// stored and synced (it then survives a crash of this process); with
// ?confirm=true, 200 once the consumer confirmed it. When the consumer's
// window is full it answers 503 with Retry-After rather than buffer without
// bound.
type httpSource struct {
	p       *delivery.ProducerController[[]byte]
	m       *metrics
	durable bool
	maxSize int
	log     *slog.Logger
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.maxSize)))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		httpError(w, http.StatusRequestEntityTooLarge, "the message exceeds BRIDGE_MAX_MESSAGE_SIZE")
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	at := time.Now()
	c, err := h.p.TrySendWithConfirmation(body)
	switch {
	case errors.Is(err, delivery.ErrNoDemand):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "the consumer's window is full; retry later")
		return
	case errors.Is(err, delivery.ErrClosed):
		httpError(w, http.StatusServiceUnavailable, "the producer is stopping")
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
	if err := c.Wait(r.Context()); err != nil {
		httpError(w, http.StatusServiceUnavailable, "the message was taken, not yet confirmed: "+err.Error())
		return
	}
	h.m.observe(time.Since(at))
	answer.Confirmed = true
	writeJSON(w, http.StatusOK, answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
