package amqp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridge-mq/bridge/delivery/backoff"
)

// keeper keeps one AMQP connection open: it watches for its loss and dials
// again, with backoff, until the carrier closes. Links take the current
// connection and open their channels on it; a link whose channel breaks
// waits for the keeper's next connection.
//
// A keeper runs one goroutine (run), started by the carrier and stopped by
// close.
type keeper struct {
	cfg  *Config
	role string // "publish" or "consume"
	log  *slog.Logger

	mu    sync.Mutex
	conn  *amqp091.Connection // nil while disconnected
	lost  chan struct{}       // closed when conn is lost
	ready chan struct{}       // closed when a connection is set after a loss

	down       errBox // why the connection was lost, or the last dial failed
	reconnects atomic.Uint64
	stop       context.Context
	cancel     context.CancelFunc
	done       chan struct{}
}

// newKeeper dials the first connection; an unreachable broker is an error
// here rather than a retry in the background.
func newKeeper(ctx context.Context, cfg *Config, role string) (*keeper, error) {
	c, err := dial(ctx, cfg, role)
	if err != nil {
		return nil, &ConnectError{URL: redactURL(cfg.URL), Role: role, Err: err}
	}
	k := &keeper{
		cfg:   cfg,
		role:  role,
		log:   cfg.Logger.With("connection", cfg.Name+" "+role),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
	k.stop, k.cancel = context.WithCancel(context.Background())
	go k.run(c)
	return k, nil
}

// current returns the live connection, waiting for one while disconnected,
// and a channel closed when that connection is lost.
func (k *keeper) current(ctx context.Context) (*amqp091.Connection, <-chan struct{}, error) {
	for {
		k.mu.Lock()
		c, lost, ready := k.conn, k.lost, k.ready
		k.mu.Unlock()
		if c != nil {
			return c, lost, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-k.done:
			return nil, nil, ErrClosed
		}
	}
}

// status reports whether the connection is up, and if not why.
func (k *keeper) status() (bool, error) {
	k.mu.Lock()
	up := k.conn != nil
	k.mu.Unlock()
	if up {
		return true, nil
	}
	return false, k.down.get()
}

// close closes the connection, stops reconnecting and waits for run.
func (k *keeper) close() {
	k.cancel()
	<-k.done
}

func (k *keeper) run(c *amqp091.Connection) {
	defer close(k.done)
	for {
		closed := c.NotifyClose(make(chan *amqp091.Error, 1))
		blocked := c.NotifyBlocked(make(chan amqp091.Blocking, 4))
		k.mu.Lock()
		k.conn, k.lost = c, make(chan struct{})
		close(k.ready)
		k.mu.Unlock()

		err, stopping := k.watch(closed, blocked)
		if !stopping {
			k.down.set(err)
		}

		k.mu.Lock()
		k.conn = nil
		close(k.lost)
		k.ready = make(chan struct{})
		k.mu.Unlock()
		if stopping {
			_ = c.CloseDeadline(time.Now().Add(k.cfg.DialTimeout))
			return
		}
		k.log.Warn("amqp connection lost; reconnecting", "err", err)
		if c = k.redial(); c == nil {
			return
		}
		n := k.reconnects.Add(1)
		k.log.Info("amqp connection re-established", "reconnects", n)
	}
}

// watch waits for the connection's loss (its error, nil for a clean close)
// or the keeper's stop. It drains the broker's flow-control notices so that
// none is dropped, and logs them.
func (k *keeper) watch(closed <-chan *amqp091.Error, blocked <-chan amqp091.Blocking) (err error, stopping bool) {
	for {
		select {
		case e, ok := <-closed:
			if ok && e != nil {
				return e, false
			}
			return amqp091.ErrClosed, false
		case b, ok := <-blocked:
			switch {
			case !ok:
				blocked = nil
			case b.Active:
				k.log.Warn("broker blocks publishing on this connection (resource alarm)", "reason", b.Reason)
			default:
				k.log.Info("broker unblocked this connection")
			}
		case <-k.stop.Done():
			return nil, true
		}
	}
}

// redial dials until it connects (nil once stopping). The first attempt is
// immediate: after a broker-side close the broker is usually still there.
func (k *keeper) redial() *amqp091.Connection {
	waits := k.cfg.reconnectWaits()
	for attempt := 1; ; attempt++ {
		c, err := dial(k.stop, k.cfg, k.role)
		if err == nil {
			return c
		}
		if k.stop.Err() != nil {
			return nil
		}
		k.down.set(err)
		wait := waits.Next()
		k.log.Warn("amqp reconnect failed", "url", redactURL(k.cfg.URL), "attempt", attempt, "retry_in", wait, "err", err)
		if !backoff.Sleep(k.stop, wait) {
			return nil
		}
	}
}

// dial makes one connection attempt, bounded by ctx and cfg.DialTimeout:
// the TCP connect, the TLS handshake and the AMQP handshake.
func dial(ctx context.Context, cfg *Config, role string) (*amqp091.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()

	var (
		mu sync.Mutex
		nc net.Conn
	)
	acfg := amqp091.Config{
		Heartbeat: cfg.Heartbeat,
		// A fresh table for each connection: the library may write to it.
		Properties: amqp091.Table{"connection_name": cfg.Name + " " + role, "product": "bridge"},
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshakes run under ctx's deadline; the library clears it
			// once the connection is open.
			deadline, _ := ctx.Deadline()
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			mu.Lock()
			nc = c
			mu.Unlock()
			return c, nil
		},
	}
	if cfg.TLS != nil {
		acfg.TLSClientConfig = cfg.TLS.Clone()
	}
	// A cancelled ctx interrupts a handshake in progress.
	interrupt := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if nc != nil {
			_ = nc.SetDeadline(time.Unix(1, 0))
		}
	})
	c, err := amqp091.DialConfig(cfg.URL, acfg)
	interrupted := !interrupt()
	if err != nil {
		// The socket's deadline is ctx's: it may expire before ctx says
		// so.
		deadline, _ := ctx.Deadline()
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		case !time.Now().Before(deadline):
			return nil, fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return nil, err
	}
	if interrupted {
		// ctx ended just as the handshake succeeded, and may have set a
		// past deadline on the socket: the connection is not usable.
		c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}
