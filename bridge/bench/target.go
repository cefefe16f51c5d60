package bench

import (
	"context"
	"log/slog"
	"slices"

	"github.com/bridge-mq/bridge/bridge"
)

// target is one transport of a bench: what serves it (loopback TCP or
// a broker), the service's carrier over it for the reliable modes, and its
// own client for the raw mode, both on the same broker in this process.
type target struct {
	name   string        // as BRIDGE_BENCH_TRANSPORTS names it
	broker string        // what served the runs, shown in every output
	client string        // the raw mode's client and its settings
	note   string        // a caveat every output carries; "" for none
	cfg    bridge.Config // the service's configuration of this transport
	car    *bridge.Carrier
	// raw opens the raw mode's pipe on a stream of its own.
	raw func(ctx context.Context, stream string, size int, deliver deliverFunc) (*pipe, error)
	// competing is the broker's own competing consumers, the work-pulling
	// scenario's baseline; nil where there is no broker (tcp).
	competing *workMechanism
	closers   []func() // undone by close, last first
}

func (t *target) onClose(f func()) { t.closers = append(t.closers, f) }

// close closes the carrier and what the target opened, in reverse order.
func (t *target) close() {
	for _, f := range slices.Backward(t.closers) {
		f()
	}
	t.closers = nil
}

// transport is a row of the bench's table: a name BRIDGE_BENCH_TRANSPORTS
// takes, the service's transport its reliable modes run over (opened
// through the service's registry), and how its target and raw client are
// set up.
type transport struct {
	name    string
	carrier string // the service's BRIDGE_TRANSPORT
	// broker is what a transport that needs a broker needs to be told: the
	// variable, whether it is set, and what it takes. The bench refuses such
	// a transport when it is not set. nil for none.
	broker *brokerSetting
	// byDefault: run when BRIDGE_BENCH_TRANSPORTS is unset (and the broker
	// is set).
	byDefault bool
	open      func(ctx context.Context, svc bridge.Config, b Config, log *slog.Logger) (*target, error)
}

type brokerSetting struct {
	name  string // the variable, without BRIDGE_
	set   func(svc *bridge.Config) bool
	takes string // what a value looks like
}

var transports = []transport{
	{name: "tcp", carrier: "tcp", open: tcpTarget, byDefault: true},
	{name: "nats", carrier: "nats", open: natsTarget(false), byDefault: true},
	{name: "jetstream", carrier: "nats", open: natsTarget(true)},
	{name: "amqp", carrier: "amqp", open: amqpTarget, byDefault: true, broker: &brokerSetting{
		name: "AMQP_URL", set: func(svc *bridge.Config) bool { return svc.AMQPURL != "" },
		takes: ", such as amqp://guest:guest@localhost:5672/"}},
	{name: "kafka", carrier: "kafka", open: kafkaTarget, byDefault: true, broker: &brokerSetting{
		name: "KAFKA_BROKERS", set: func(svc *bridge.Config) bool { return len(svc.KafkaBrokers) > 0 },
		takes: ": host:port, comma-separated"}},
}

// Transports are the names BRIDGE_BENCH_TRANSPORTS takes: the service's
// transports, and jetstream for NATS with BRIDGE_NATS_JETSTREAM.
func Transports() []string {
	names := make([]string, len(transports))
	for i, t := range transports {
		names[i] = t.name
	}
	return names
}

func transportNamed(name string) (transport, bool) {
	i := slices.IndexFunc(transports, func(t transport) bool { return t.name == name })
	if i < 0 {
		return transport{}, false
	}
	return transports[i], true
}

// openTarget connects to the transport t with the service's settings, the
// bench's window replacing BRIDGE_WINDOW.
func openTarget(ctx context.Context, svc bridge.Config, b Config, t transport, log *slog.Logger) (*target, error) {
	svc.Transport = t.carrier
	svc.Window = b.window()
	return t.open(ctx, svc, b, log.With("bench", t.name))
}

// openCarrier opens the service's carrier for t, both ends here, and has
// t close it.
func (t *target) openCarrier(ctx context.Context, log *slog.Logger) error {
	car, err := bridge.OpenCarrier(ctx, &t.cfg, log)
	if err != nil {
		return err
	}
	t.car = car
	t.onClose(func() { car.Close() })
	return nil
}

// tcpTarget is loopback TCP. Its raw mode is the tcp carrier's own link, a
// message per frame with no protocol: TCP has no client but a socket, and
// the link is the same framing, handshake and write coalescing the
// protocol runs on, so the ratio shows what the protocol adds and nothing
// else.
func tcpTarget(ctx context.Context, cfg bridge.Config, _ Config, log *slog.Logger) (*target, error) {
	cfg.TCPAddr = "127.0.0.1:0"
	t := &target{
		name:   "tcp",
		broker: "loopback, no broker",
		client: "the tcp carrier's link: a message per frame, no protocol",
		cfg:    cfg,
	}
	if err := t.openCarrier(ctx, log); err != nil {
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
