package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// The delivery modes of BRIDGE_MODE.
const (
	modePointToPoint = "point-to-point"
	modeWorkPulling  = "work-pulling"
)

// maxWorkPullingStream bounds the stream's name in work pulling: each
// worker's stream is named after it and the worker ID (up to 64 more
// bytes), and must stay a valid NATS stream, queue and topic name.
const maxWorkPullingStream = 48

// WorkPulling reports whether the configuration runs work pulling.
func (cfg *Config) WorkPulling() bool { return cfg.Mode == modeWorkPulling }

// checkMode checks BRIDGE_MODE and what work pulling needs, and settles the
// worker's ID.
func (cfg *Config) checkMode(c *checker) {
	c.oneOf("MODE", cfg.Mode, modePointToPoint, modeWorkPulling)
	if !cfg.WorkPulling() {
		if cfg.WorkerID != "" {
			c.fail("WORKER_ID", cfg.WorkerID, "only a work-pulling consumer has a worker ID (BRIDGE_MODE=work-pulling)")
		}
		return
	}
	if len(cfg.Stream) > maxWorkPullingStream {
		c.fail("STREAM", cfg.Stream, fmt.Sprintf("at most %d bytes in work pulling: each worker's stream is named after it and the worker", maxWorkPullingStream))
	}
	if cfg.Transport == "tcp" && cfg.TCPListen != "producer" {
		c.fail("TCP_LISTEN", cfg.TCPListen, "must be producer with BRIDGE_MODE=work-pulling over tcp: the producer listens and every worker dials it")
	}
	if cfg.OnlyFlowControl {
		c.fail("ONLY_FLOW_CONTROL", "true", "work pulling hands a dead worker's messages to another: it needs resends")
	}
	if cfg.WorkerTimeout < 50*time.Millisecond {
		c.fail("WORKER_TIMEOUT", cfg.WorkerTimeout.String(), "must be at least 50ms")
	}
	if cfg.MaxWorkers < 1 {
		c.fail("MAX_WORKERS", strconv.Itoa(cfg.MaxWorkers), "must be from 1 up")
	}
	if cfg.Role != "consumer" {
		if cfg.WorkerID != "" {
			c.fail("WORKER_ID", cfg.WorkerID, "only a consumer (a worker) has a worker ID")
		}
		return
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = defaultWorkerID()
	}
	if err := delivery.CheckWorkerID(cfg.WorkerID); err != nil {
		c.fail("WORKER_ID", cfg.WorkerID, "1 to 64 ASCII letters, digits or '-'")
	}
}

// defaultWorkerID is the host name and the process ID, in the characters a
// worker ID takes: unique among the workers of one host, and telling of
// which process it is.
func defaultWorkerID() string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '.':
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	pid := strconv.Itoa(os.Getpid())
	if len(h) > delivery.MaxWorkerIDLen-1-len(pid) {
		h = h[:delivery.MaxWorkerIDLen-1-len(pid)]
	}
	if h == "" {
		h = "worker"
	}
	return h + "-" + pid
}

// WorkPullingSettings are the settings of this configuration's
// work-pulling producer (no durable queue: the producer end opens it).
func (cfg *Config) WorkPullingSettings(log *slog.Logger) delivery.WorkPullingSettings {
	return delivery.WorkPullingSettings{
		ProducerSettings:  cfg.ProducerSettings(log),
		MaxWorkers:        cfg.MaxWorkers,
		WorkerTimeout:     cfg.WorkerTimeout,
		HeartbeatInterval: cfg.WorkerTimeout / 5,
	}
}

// WorkerSettings are the settings of this configuration's worker.
func (cfg *Config) WorkerSettings(log *slog.Logger) delivery.WorkerSettings {
	return delivery.WorkerSettings{
		ConsumerSettings:  cfg.ConsumerSettings(log),
		WorkerID:          cfg.WorkerID,
		HeartbeatInterval: cfg.WorkerTimeout / 5,
		ProducerTimeout:   cfg.WorkerTimeout,
	}
}

// openConsumerEnd opens the consumer end: in work pulling, a worker named
// cfg.WorkerID, through an opener that seals what it opens. The link
// returned is the one the consumer receives on, for readiness and metrics.
func openConsumerEnd(ctx context.Context, car *Carrier, cfg *Config, log *slog.Logger) (*delivery.ConsumerController[[]byte], delivery.Link, error) {
	if !cfg.WorkPulling() {
		return newConsumer(ctx, car, cfg, log)
	}
	opener := newLinkOpener(car, cfg, log)
	c, err := delivery.NewWorkerController[[]byte](ctx, opener, cfg.Stream, nil, cfg.WorkerSettings(log.With("worker_id", cfg.WorkerID)))
	if err != nil {
		return nil, nil, err
	}
	own := delivery.WorkerStream(cfg.Stream, cfg.WorkerID)
	opener.mu.Lock()
	link := opener.links[own]
	opener.mu.Unlock()
	log.Info("work-pulling worker", "worker_id", cfg.WorkerID, "its_stream", own)
	return c, link, nil
}

// linkOpener opens links on the service's carrier, each sealed under its own
// stream's name when a secret is set; it keeps the last link of each stream
// for the readiness check and the metrics.
type linkOpener struct {
	car *Carrier
	cfg *Config
	log *slog.Logger

	mu    sync.Mutex
	links map[string]delivery.Link
}

func newLinkOpener(car *Carrier, cfg *Config, log *slog.Logger) *linkOpener {
	return &linkOpener{car: car, cfg: cfg, log: log, links: map[string]delivery.Link{}}
}

func (o *linkOpener) OpenLink(ctx context.Context, stream string, end delivery.End) (delivery.Link, error) {
	link, err := openStreamLink(ctx, o.car, o.cfg, stream, end, o.log)
	if err == nil {
		o.mu.Lock()
		o.links[stream] = link
		o.mu.Unlock()
	}
	return link, err
}

// statusOf is a Link whose status is that of the last link opened of
// stream (not connected before there is one), for setReady and the
// metrics; it carries no frames.
func (o *linkOpener) statusOf(stream string) delivery.Link {
	return statusLink(func() delivery.LinkStatus {
		o.mu.Lock()
		l := o.links[stream]
		o.mu.Unlock()
		if l == nil {
			return delivery.LinkStatus{}
		}
		return linkStatus(l)()
	})
}

type statusLink func() delivery.LinkStatus

func (s statusLink) Status() delivery.LinkStatus { return s() }
func (statusLink) Send(context.Context, []byte) error {
	return delivery.ErrLinkClosed
}
func (statusLink) Receive(context.Context) (delivery.Frame, error) {
	return delivery.Frame{}, delivery.ErrLinkClosed
}
func (statusLink) Close() error { return nil }

// StreamOpener is the opener of links the service's work-pulling ends use
// on car: every stream sealed under its own name when cfg has a secret.
// The bench's work-pulling scenario opens its producer and workers with it,
// as `bridge run` does.
func StreamOpener(car *Carrier, cfg *Config, log *slog.Logger) delivery.LinkOpener {
	return newLinkOpener(car, cfg, log)
}
