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

	"github.com/bridge-mq/bridge/delivery"
)

// httpServer serves /healthz, /readyz, /metrics and, for a producer with
// the HTTP source, the API under /v1/. Only the API asks for the bearer
// token: probes and scrapers need none.
type httpServer struct {
	srv     *http.Server
	ln      net.Listener
	done    chan error
	ready   atomic.Pointer[func() error] // nil error: ready
	running atomic.Bool                  // the controller runs
}

func startHTTP(cfg *Config, m *metrics, api http.Handler, log *slog.Logger) (*httpServer, error) {
	if cfg.HTTPAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("BRIDGE_HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	h := &httpServer{ln: ln, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if api != nil {
		mux.Handle("/v1/", requireToken(cfg.HTTPToken, api))
	}
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { h.done <- h.srv.Serve(ln) }()
	log.Info("serving HTTP", "addr", ln.Addr().String(), "api", api != nil, "token", cfg.HTTPToken != "")
	return h, nil
}

// setReady installs the readiness check: the link is connected and the
// controller runs.
func (h *httpServer) setReady(link delivery.Link) {
	if h == nil {
		return
	}
	status := linkStatus(link)
	check := func() error {
		if !h.running.Load() {
			return errors.New("the controller is not running")
		}
		if st := status(); !st.Connected {
			if st.Err != nil {
				return fmt.Errorf("the carrier is not connected: %w", st.Err)
			}
			return errors.New("the carrier is not connected")
		}
		return nil
	}
	h.ready.Store(&check)
}

func (h *httpServer) setRunning(running bool) {
	if h != nil {
		h.running.Store(running)
	}
}

func (h *httpServer) readyz(w http.ResponseWriter, r *http.Request) {
	check := h.ready.Load()
	if check == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if err := (*check)(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
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
