package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/bridge-mq/bridge/delivery"
)

// benchTarget is one transport of a bench: what serves it (loopback TCP or
// a broker), the service's carrier over it for the reliable modes, and its
// own client for the raw mode, both on the same broker in this process.
type benchTarget struct {
	name   string // as BRIDGE_BENCH_TRANSPORTS names it
	broker string // what served the runs, shown in every output
	client string // the raw mode's client and its settings
	note   string // a caveat every output carries; "" for none
	cfg    Config // the service's configuration of this transport
	car    *carrier
	// raw opens the raw mode's pipe on a stream of its own.
	raw     func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error)
	closers []func() // undone by close, last first
}

func (t *benchTarget) onClose(f func()) { t.closers = append(t.closers, f) }

// close closes the carrier and what the target opened, in reverse order.
func (t *benchTarget) close() {
	for _, f := range slices.Backward(t.closers) {
		f()
	}
	t.closers = nil
}

// openBenchTarget connects to the transport name (one of BenchTransports)
// with the service's settings, the bench's window replacing BRIDGE_WINDOW.
func openBenchTarget(ctx context.Context, cfg Config, name string, log *slog.Logger) (*benchTarget, error) {
	cfg.Transport = benchCarrier(name)
	cfg.Window = cfg.Bench.Window
	log = log.With("bench", name)
	switch name {
	case "tcp":
		return tcpTarget(ctx, cfg, log)
	case "nats", "jetstream":
		return natsTarget(ctx, cfg, log, name == "jetstream")
	case "amqp":
		return amqpTarget(ctx, cfg, log)
	case "kafka":
		return kafkaTarget(ctx, cfg, log)
	}
	return nil, fmt.Errorf("bench: unknown transport %q", name)
}

// openCarrierFor opens the service's carrier for t, both ends here, and
// has t close it.
func (t *benchTarget) openCarrierFor(ctx context.Context, log *slog.Logger) error {
	car, err := openCarrier(ctx, &t.cfg, log, delivery.ConsumerEnd, delivery.ProducerEnd)
	if err != nil {
		return err
	}
	t.car = car
	t.onClose(func() { car.close() })
	return nil
}

// tcpTarget is loopback TCP. Its raw mode is the tcp carrier's own link, a
// message per frame with no protocol: TCP has no client but a socket, and
// the link is the same framing, handshake and write coalescing the
// protocol runs on, so the ratio shows what the protocol adds and nothing
// else.
func tcpTarget(ctx context.Context, cfg Config, log *slog.Logger) (*benchTarget, error) {
	cfg.TCPAddr = "127.0.0.1:0"
	t := &benchTarget{
		name:   "tcp",
		broker: "loopback, no broker",
		client: "the tcp carrier's link: a message per frame, no protocol",
		cfg:    cfg,
	}
	if err := t.openCarrierFor(ctx, log); err != nil {
		return nil, err
	}
	t.raw = func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error) {
		return linkPipe(ctx, t.car, stream, deliver)
	}
	return t, nil
}

// quietLogger passes on only warnings and errors: an embedded server's
// notices would bury the progress line.
func quietLogger(log *slog.Logger) *slog.Logger {
	return slog.New(levelFilter{Handler: log.Handler(), min: slog.LevelWarn})
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFilter{Handler: f.Handler.WithAttrs(as), min: f.min}
}

func (f levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{Handler: f.Handler.WithGroup(name), min: f.min}
}
