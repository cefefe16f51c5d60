package amqp_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/amqp"
)

// TestBrokerOutage puts the broker out of reach mid-stream, as a broker
// restart or a network failure would (the shared broker itself must not be
// restarted): a TCP proxy in front of it drops every connection and
// refuses new ones until the carrier has failed to reconnect, then lets
// it in again. The stream completes once and in order.
func TestBrokerOutage(t *testing.T) {
	requireBroker(t)
	px := startProxy(t)
	u, err := url.Parse(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = px.addr
	const n = 10000
	stream := testName("outage")
	c := newCarrier(t, amqp.Config{URL: u.String(), ReconnectMax: 500 * time.Millisecond}, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	consumerLink, producerLink, cons, p := startStream(t, ctx, c, stream, n)

	got := cons.TakeWithFaults(ctx, n-1, []int{n / 4, n / 2}, func(int) {
		px.down()
		// Polling an observable condition: the carrier has tried to
		// reconnect, and been refused.
		for {
			st := c.Status()
			if !st.Connected && st.Err != nil && strings.Contains(st.Err.Error(), "refused") {
				t.Logf("during the outage: %+v; links %+v, %+v", st, producerLink.Status(), consumerLink.Status())
				break
			}
			if ctx.Err() != nil {
				t.Errorf("the carrier never reported the outage: %+v", st)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		px.up(t)
		// And has reconnected, so that the next outage is one of its own
		// (a window's messages may come in one frame, and both outages
		// fall due at once).
		for !c.Status().Connected {
			if ctx.Err() != nil {
				t.Errorf("the carrier never reconnected: %+v", c.Status())
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	adaptertest.CheckExactlyOnceInOrder(t, got, n)
	p.Stop(ctx)
	cons.Stop(ctx)
	st := c.Status()
	t.Logf("carrier %+v; producer link %+v; consumer link %+v", st, producerLink.Stats(), consumerLink.Stats())
	if st.Reconnects < 4 || !st.Connected {
		t.Errorf("carrier status %+v after two outages", st)
	}
}

// proxy forwards TCP connections to the broker, and can drop them all and
// refuse new ones for a while.
type proxy struct {
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T) *proxy {
	u, err := url.Parse(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5672")
	}
	px := &proxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px.addr = ln.Addr().String()
	px.serve(ln)
	t.Cleanup(func() {
		px.down()
		px.wg.Wait()
	})
	return px
}

func (px *proxy) serve(ln net.Listener) {
	px.mu.Lock()
	px.ln = ln
	px.mu.Unlock()
	px.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			px.wg.Go(func() { px.forward(c) })
		}
	})
}

func (px *proxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", px.target)
	if err != nil {
		client.Close()
		return
	}
	px.mu.Lock()
	px.conns[client], px.conns[server] = struct{}{}, struct{}{}
	px.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(server, client) })
	wg.Go(func() { pipe(client, server) })
	wg.Wait()
	px.mu.Lock()
	delete(px.conns, client)
	delete(px.conns, server)
	px.mu.Unlock()
}

// down closes the listener and every connection: the broker is gone.
func (px *proxy) down() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.ln != nil {
		px.ln.Close()
		px.ln = nil
	}
	for c := range px.conns {
		c.Close()
	}
}

// up listens again on the same address: the broker is back.
func (px *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", px.addr)
	if err != nil {
		t.Errorf("proxy: listen again on %s: %v", px.addr, err)
		return
	}
	px.serve(ln)
}
