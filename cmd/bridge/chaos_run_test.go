package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
)

// chaosRun streams numbered messages through a producer process (the HTTP
// source with the durable queue: a 202 means the message survives a crash)
// and a consumer process (stdout to a file per lifetime), injects faults,
// and records what the consumer wrote and when.
type chaosRun struct {
	t        *testing.T
	rig      *rig
	n        int
	rng      *rand.Rand
	dir      string
	httpAddr string // the producer's: the API, and its health
	consHTTP string // the consumer's health
	producer *proc
	consumer *proc

	accepted atomic.Int64 // messages the producer has answered 202 for

	mu        sync.Mutex
	lives     [][]int           // what each consumer lifetime wrote, in order
	firstSeen []time.Time       // when each message was first written
	newAt     []time.Time       // the times messages were first written, in order
	kills     []producerKill    // producer kills, with the consumer lifetime current then
	faults    []faultRecord     // what was injected
	lifeStart []time.Time       // when each consumer lifetime started
	tail      chan string       // the tailer's next file
	tailDone  chan struct{}     // closed when the tailer returns
	partial   map[string][]byte // bytes of a line not yet complete, per file
}

type producerKill struct {
	at      time.Time
	life    int
	written int // the highest message written by then
}

type faultRecord struct {
	kind     faultKind
	at       int           // messages accepted when it was injected
	recovery time.Duration // from the end of the fault to the next message written for the first time
}

func newChaosRun(t *testing.T, r *rig, n int, seed uint64) *chaosRun {
	c := &chaosRun{
		t: t, rig: r, n: n, rng: rand.New(rand.NewPCG(seed, 11)), dir: t.TempDir(), httpAddr: adaptertest.FreeAddr(t), consHTTP: adaptertest.FreeAddr(t),
		firstSeen: make([]time.Time, n+1),
		tail:      make(chan string, 1),
		tailDone:  make(chan struct{}),
		partial:   map[string][]byte{},
	}
	return c
}

func (c *chaosRun) producerEnv() []string {
	return append(append(append([]string{}, c.rig.vars...), c.rig.producerVars...),
		"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR="+c.httpAddr,
		"BRIDGE_DURABLE_DIR="+filepath.Join(c.dir, "queue"),
		"BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_SHUTDOWN_TIMEOUT=10s")
}

func (c *chaosRun) consumerEnv() []string {
	return append(append(append([]string{}, c.rig.vars...), c.rig.consumerVars...),
		"BRIDGE_ROLE=consumer", "BRIDGE_HTTP_ADDR="+c.consHTTP, "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_SHUTDOWN_TIMEOUT=10s")
}

func (c *chaosRun) startProducer() {
	c.producer = startProc(c.t, nil, nil, c.producerEnv()...)
}

// startConsumer starts a consumer lifetime writing to a file of its own,
// which the tailer follows from then on.
func (c *chaosRun) startConsumer() {
	c.mu.Lock()
	life := len(c.lives)
	c.lives = append(c.lives, nil)
	c.lifeStart = append(c.lifeStart, time.Now())
	c.mu.Unlock()
	path := filepath.Join(c.dir, fmt.Sprintf("consumer-%d.out", life))
	f, err := os.Create(path)
	if err != nil {
		c.t.Fatal(err)
	}
	c.consumer = startProc(c.t, nil, f, c.consumerEnv()...)
	f.Close()
	c.tail <- path
}

// kill sends SIGKILL and waits for the process to be gone.
func kill(p *proc) {
	p.cmd.Process.Kill()
	<-p.done
	p.done <- nil
}

// run streams the messages, injecting faults at random moments, and returns
// once every message has been written by the consumer (or fails the test).
func (c *chaosRun) run(ctx context.Context, faults int) {
	go c.tailer(ctx)
	c.startConsumer()
	c.startProducer()
	clientDone := make(chan error, 1)
	go func() { clientDone <- c.client(ctx) }()

	for _, f := range c.schedule(faults) {
		if !c.waitAccepted(ctx, f.at, clientDone) {
			break
		}
		end := c.inject(f.kind)
		c.awaitRestarted(f.kind)
		rec, ok := c.recoveredAfter(ctx, end)
		if !ok {
			c.t.Fatalf("no progress after %s at message %d: %s", f.kind, f.at, c.diagnose())
		}
		f.recovery = rec
		c.mu.Lock()
		c.faults = append(c.faults, f)
		c.mu.Unlock()
	}
	select {
	case err := <-clientDone:
		if err != nil {
			c.t.Fatal(err)
		}
	case <-ctx.Done():
		c.t.Fatalf("the client did not get every message accepted: %s", c.diagnose())
	}
	if !c.waitAllWritten(ctx) {
		c.t.Errorf("not every accepted message was written: %s", c.diagnose())
	}
	// A process just restarted by the last fault may not yet handle
	// SIGTERM; one that serves /healthz does.
	waitStatus(c.t, "http://"+c.httpAddr+"/healthz", http.StatusOK)
	waitStatus(c.t, "http://"+c.consHTTP+"/healthz", http.StatusOK)
	c.producer.terminate(c.t, "producer")
	c.consumer.terminate(c.t, "consumer")
	c.tail <- "" // drain the last file and stop
	<-c.tailDone
}

// schedule spreads the faults over the stream at random points, cycling
// through the kinds the rig supports in a random order, so every kind is
// injected when there are at least as many faults as kinds.
func (c *chaosRun) schedule(n int) []faultRecord {
	kinds := slices.Clone(c.rig.faults)
	var out []faultRecord
	for i := range n {
		if i%len(kinds) == 0 {
			c.rng.Shuffle(len(kinds), func(a, b int) { kinds[a], kinds[b] = kinds[b], kinds[a] })
		}
		slot := float64(c.n) * 0.9 / float64(n)
		at := int(float64(c.n)*0.05 + slot*float64(i) + c.rng.Float64()*slot*0.8)
		out = append(out, faultRecord{kind: kinds[i%len(kinds)], at: at})
	}
	return out
}

// inject applies one fault and returns when it ended.
func (c *chaosRun) inject(kind faultKind) time.Time {
	switch kind {
	case killConsumer:
		kill(c.consumer)
		c.startConsumer()
	case killProducer:
		kill(c.producer)
		c.mu.Lock()
		highest := 0
		for _, ids := range c.lives {
			if len(ids) > 0 {
				highest = max(highest, slices.Max(ids))
			}
		}
		c.kills = append(c.kills, producerKill{at: time.Now(), life: len(c.lives) - 1, written: highest})
		c.mu.Unlock()
		c.startProducer()
	case cutLink:
		c.rig.proxy.Stop()
		time.Sleep(time.Duration(200+c.rng.IntN(800)) * time.Millisecond) // the outage itself
		if err := c.rig.proxy.Start(); err != nil {
			c.t.Fatalf("restoring the proxy: %v", err)
		}
	case addLatency:
		remove := withLatency(c.t, c.rig.proxy)
		time.Sleep(time.Duration(500+c.rng.IntN(1500)) * time.Millisecond) // while the stream crawls
		remove()
	case brokerFault:
		c.rig.brokerFault(c.t)
	}
	return time.Now()
}

// awaitRestarted waits, after a kill, until the process started in its
// place serves /healthz, which it does once its carrier is open. The
// consumer may show progress before that, draining what the broker holds,
// and a fault injected meanwhile would fail the new process's first
// connection, which it reports and exits on, as it should.
func (c *chaosRun) awaitRestarted(kind faultKind) {
	switch kind {
	case killConsumer:
		waitStatus(c.t, "http://"+c.consHTTP+"/healthz", http.StatusOK)
	case killProducer:
		waitStatus(c.t, "http://"+c.httpAddr+"/healthz", http.StatusOK)
	}
}

// client POSTs messages 1..n in order, each until a 202: a refused or
// broken request (the producer is down) or a 503 (the window is full) is
// tried again. A message whose request broke may have been stored, so
// retrying it can deliver it twice: the at-least-once of a producer crash.
func (c *chaosRun) client(ctx context.Context) error {
	url := "http://" + c.httpAddr + "/v1/messages"
	hc := &http.Client{Timeout: 10 * time.Second}
	for id := 1; id <= c.n; {
		if ctx.Err() != nil {
			return fmt.Errorf("client stopped at message %d: %w", id, ctx.Err())
		}
		resp, err := hc.Post(url, "text/plain", strings.NewReader("m"+strconv.Itoa(id)))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				c.accepted.Store(int64(id))
				id++
				continue
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				return fmt.Errorf("POST message %d: %s", id, resp.Status)
			}
		}
		time.Sleep(5 * time.Millisecond) // as Retry-After asks, if sooner: the producer is full or down
	}
	return nil
}

// tailer follows the consumer's output files, one lifetime after another,
// recording each message as it appears. A file is polled: another process
// writes it, and nothing signals that.
func (c *chaosRun) tailer(ctx context.Context) {
	defer close(c.tailDone)
	var f *os.File
	var life int
	buf := make([]byte, 64<<10)
	drain := func() {
		for f != nil {
			n, _ := f.Read(buf)
			if n == 0 {
				return
			}
			c.took(life, f.Name(), buf[:n])
		}
	}
	for {
		select {
		case next := <-c.tail:
			drain()
			if f != nil {
				f.Close()
				life++
			}
			if next == "" {
				return
			}
			var err error
			if f, err = os.Open(next); err != nil {
				c.t.Error(err)
				return
			}
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
			drain()
		}
	}
}

// took records the complete lines in data, written by consumer lifetime
// life; a line cut short by a kill is never completed and never counted
// (it was not confirmed: the next lifetime gets it again).
func (c *chaosRun) took(life int, file string, data []byte) {
	data = append(c.partial[file], data...)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := string(data[:i])
		data = data[i+1:]
		id, err := strconv.Atoi(strings.TrimPrefix(line, "m"))
		if err != nil || id < 1 || id > c.n || !strings.HasPrefix(line, "m") {
			c.t.Errorf("lifetime %d wrote %q, not a message of this run", life, line)
			continue
		}
		c.lives[life] = append(c.lives[life], id)
		if c.firstSeen[id].IsZero() {
			c.firstSeen[id] = now
			c.newAt = append(c.newAt, now)
		}
	}
	c.partial[file] = append([]byte(nil), data...)
}

// waitAccepted waits until the producer has accepted message at, and fails
// the test if either process exits by itself meanwhile (the client would
// otherwise retry against nothing until the test times out).
func (c *chaosRun) waitAccepted(ctx context.Context, at int, clientDone chan error) bool {
	for c.accepted.Load() < int64(at) {
		select {
		case err := <-clientDone:
			clientDone <- err
			return false
		case <-ctx.Done():
			return false
		case err := <-c.producer.done:
			c.producer.done <- err
			c.t.Fatalf("the producer exited by itself (%v) at message %d: %s", err, c.accepted.Load(), c.diagnose())
		case err := <-c.consumer.done:
			c.consumer.done <- err
			c.t.Fatalf("the consumer exited by itself (%v) at message %d: %s", err, c.accepted.Load(), c.diagnose())
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

// recoveredAfter waits until a message is written for the first time after
// end, and returns how long after end that was.
func (c *chaosRun) recoveredAfter(ctx context.Context, end time.Time) (time.Duration, bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c.mu.Lock()
		i, _ := slices.BinarySearchFunc(c.newAt, end, func(t, e time.Time) int { return t.Compare(e) })
		var at time.Time
		if i < len(c.newAt) {
			at = c.newAt[i]
		}
		c.mu.Unlock()
		if !at.IsZero() {
			return at.Sub(end), true
		}
		if int(c.accepted.Load()) == c.n && c.distinct() == c.n {
			return 0, true // nothing left to deliver
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, false
}

func (c *chaosRun) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.newAt)
}

func (c *chaosRun) waitAllWritten(ctx context.Context) bool {
	deadline := time.Now().Add(2 * time.Minute)
	for c.distinct() < c.n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (c *chaosRun) diagnose() string {
	return fmt.Sprintf("accepted %d, written %d distinct\nproducer stderr:\n%s\nconsumer stderr:\n%s",
		c.accepted.Load(), c.distinct(), lastLines(c.producer.stderr.String(), 20), lastLines(c.consumer.stderr.String(), 20))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
