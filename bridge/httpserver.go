package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// httpServer serves /healthz, /readyz, /metrics and, for a producer with
// the HTTP source, the API under /v1/. Only the API asks for the bearer
// token: probes and scrapers need none.
//
// A request must arrive, body included, and its answer be written within
// BRIDGE_HTTP_TIMEOUT (a ?confirm=true wait lifts both deadlines once the
// body is in: see httpSource), a keep-alive connection idle that long is
// closed, and at most BRIDGE_HTTP_MAX_CONNS connections are open at once
// (more wait in the listen queue): a client that stalls holds one
// connection for a bounded time, and clients together hold a bounded number.
type httpServer struct {
	srv     *http.Server
	ln      net.Listener
	done    chan error
	log     *slog.Logger
	ready   atomic.Pointer[func() (string, error)] // the reason it is not ready ("" when it is), and the detail
	running atomic.Bool                            // the controller runs
	notice  *throttle                              // of the details of readyz's answers, in the log
}

func startHTTP(cfg *Config, m *metrics, api http.Handler, log *slog.Logger) (*httpServer, error) {
	if cfg.HTTPAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("BRIDGE_HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	h := &httpServer{ln: ln, done: make(chan error, 1), log: log, notice: newThrottle()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if api != nil {
		mux.Handle("/v1/", requireToken(cfg.HTTPToken, api))
	}
	h.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(10*time.Second, cfg.HTTPTimeout),
		ReadTimeout:       cfg.HTTPTimeout,
		WriteTimeout:      cfg.HTTPTimeout,
		IdleTimeout:       cfg.HTTPTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          peerErrorLog(log),
	}
	go func() { h.done <- h.srv.Serve(limitListener(ln, cfg.HTTPMaxConns)) }()
	log.Info("serving HTTP", "addr", ln.Addr().String(), "api", api != nil, "token", cfg.HTTPToken != "",
		"timeout", cfg.HTTPTimeout, "max_conns", cfg.HTTPMaxConns)
	return h, nil
}

// setReady installs the readiness check: the link is connected and the
// controller runs.
func (h *httpServer) setReady(link delivery.Link) {
	status := linkStatus(link)
	h.setReadyWhen(func() (string, error) {
		if st := status(); !st.Connected {
			return notConnectedReason(st.Err), st.Err
		}
		return "", nil
	})
}

// setReadyWhen installs the readiness check: the controller runs and ready
// has no reason ("") to say it is not ready, with the detail for the log.
func (h *httpServer) setReadyWhen(ready func() (reason string, detail error)) {
	if h == nil {
		return
	}
	check := func() (string, error) {
		if !h.running.Load() {
			return "controller not running", nil
		}
		return ready()
	}
	h.ready.Store(&check)
}

// notConnectedReason is what /readyz says of a link that is not connected,
// in short: whoever may probe it learns nothing of the carrier's errors.
func notConnectedReason(err error) string {
	switch {
	case errors.Is(err, delivery.ErrSealMismatch):
		return "peer's frames do not open: check BRIDGE_SECRET"
	case errors.Is(err, tcp.ErrRefused):
		return "refused by the peer: check BRIDGE_SECRET (the log says why)"
	}
	return "carrier not connected"
}

func (h *httpServer) setRunning(running bool) {
	if h != nil {
		h.running.Store(running)
	}
}

// readyz answers 200 when ready, else 503 with a short reason; the detail
// goes to the log, at most once every 10 s.
func (h *httpServer) readyz(w http.ResponseWriter, r *http.Request) {
	check := h.ready.Load()
	if check == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if reason, detail := (*check)(); reason != "" {
		if detail != nil {
			h.notice.do(func(held int) {
				h.log.Info("not ready: "+reason, "err", detail, "held_back", held)
			})
		}
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// stop stops serving, letting requests in progress finish until ctx ends.
func (h *httpServer) stop(ctx context.Context) {
	if h == nil {
		return
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		h.srv.Close()
	}
	<-h.done
}

// requireToken refuses requests without "Authorization: Bearer <token>";
// an empty token lets everything through.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bridge"`)
			status := http.StatusUnauthorized
			if strings.HasPrefix(string(got), "Bearer ") {
				status = http.StatusForbidden
			}
			http.Error(w, "a valid bearer token is required (BRIDGE_HTTP_TOKEN)", status)
			return
		}
		next.ServeHTTP(w, r)
	})
}
