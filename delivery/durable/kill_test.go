package durable_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/bridge-mq/bridge/delivery/durable"
)

// The test binary is also the producer process that TestSIGKILLedProducer
// kills: with childEnv set, TestMain runs the producer instead of tests.
const (
	childEnv     = "BRIDGE_DURABLE_TEST_CHILD"
	childPath    = "BRIDGE_DURABLE_TEST_PATH"
	childAddr    = "BRIDGE_DURABLE_TEST_ADDR"
	childCount   = "BRIDGE_DURABLE_TEST_COUNT"
	killedStream = "killed"
)

var tcpConfig = tcp.Config{Keepalive: 100 * time.Millisecond, IdleTimeout: time.Second, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(producerProcess())
	}
	goleak.VerifyTestMain(m)
}

// producerProcess sends messages up to the count over TCP with the durable
// queue, carrying on from what the queue says the last lifetime took, and
// exits 0 once all are confirmed. Message i has sequence number i+1 in every
// lifetime, since numbering goes on across them.
func producerProcess() int {
	ctx := context.Background()
	path, addr := os.Getenv(childPath), os.Getenv(childAddr)
	n, _ := strconv.Atoi(os.Getenv(childCount))
	q, err := durable.Open(path, durable.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	st, err := q.Load(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	next := int(st.Confirmed)
	if len(st.Messages) > 0 {
		next = int(st.Messages[len(st.Messages)-1].SeqNr)
	}
	link, err := tcp.Dial(ctx, addr, killedStream, delivery.ProducerEnd, tcpConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s := adaptertest.FastProducer
	s.ProducerID = "killed"
	s.DurableQueue = q
	p, err := delivery.NewProducerController[[]byte](link, nil, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go p.Run(ctx)
	for i := next; i < n; i++ {
		if _, err := p.Send(ctx, adaptertest.Payload(i, 64)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	done, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Shutdown(done); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type child struct {
	cmd    *exec.Cmd
	output bytes.Buffer
}

func startChild(t *testing.T, path, addr string, n int) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(os.Environ(), childEnv+"=1", childPath+"="+path, childAddr+"="+addr, childCount+"="+strconv.Itoa(n))
	c.cmd.Stdout, c.cmd.Stderr = &c.output, &c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSIGKILLedProducer kills a producer process with SIGKILL at random
// points, at least ten times, while it sends 100,000 messages, and restarts
// it on the same durable queue. The consumer gets every message; each
// producer lifetime's messages come in order; and each lifetime starts
// exactly after the confirmation the killed one had stored, so the only
// duplicates are messages whose confirmation was not yet on disk.
func TestSIGKILLedProducer(t *testing.T) {
	const n, kills = 100_000, 12
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "producer.db")
	ln, err := tcp.Listen(ctx, "127.0.0.1:0", tcpConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	link, _ := ln.Link(killedStream, delivery.ConsumerEnd)
	cs := adaptertest.FastConsumer
	cs.Window = 1000
	consumer := adaptertest.StartConsumer(t, ctx, link, cs)

	proc := startChild(t, path, ln.Addr().String(), n)
	defer func() { proc.cmd.Process.Kill(); proc.cmd.Wait() }()

	var order []uint64            // producer lifetimes (epochs) in order of appearance
	lives := map[uint64][]int{}   // each lifetime's deliveries
	resumedAt := map[uint64]int{} // killed lifetime -> the stored confirmed at its death
	killed := map[uint64]bool{}   // lifetimes killed
	seen := make([]bool, n)
	missing := n
	current, sinceStart := uint64(0), 0
	killAt := 1000 + rng.IntN(5000)
	for missing > 0 {
		d, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d lifetimes: %v\n%s", len(order), err, proc.output.String())
		}
		i, err := adaptertest.Index(d.Message)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lives[d.ProducerEpoch]; !ok {
			order = append(order, d.ProducerEpoch)
		}
		lives[d.ProducerEpoch] = append(lives[d.ProducerEpoch], i)
		if !seen[i] {
			seen[i] = true
			missing--
		}
		d.Confirm()
		if killed[d.ProducerEpoch] {
			continue // a late delivery of a lifetime already killed
		}
		if d.ProducerEpoch != current {
			current, sinceStart = d.ProducerEpoch, 0
		}
		sinceStart++
		if len(killed) < kills && sinceStart == killAt && missing > 0 {
			proc.cmd.Process.Kill() // SIGKILL
			proc.cmd.Wait()
			killed[current] = true
			st := load(t, path)
			resumedAt[current] = int(st.Confirmed)
			t.Logf("killed lifetime %d after %d of its deliveries; confirmation stored up to message %d", len(order), sinceStart, st.Confirmed)
			proc = startChild(t, path, ln.Addr().String(), n)
			killAt = 1000 + rng.IntN(5000)
		}
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the last producer process: %v\n%s", err, proc.output.String())
		}
	case <-time.After(time.Minute):
		proc.cmd.Process.Signal(syscall.SIGQUIT)
		<-exited
		t.Fatalf("the last producer process did not finish; consumer %+v\n%s", consumer.Stats(), proc.output.String())
	}
	consumer.Stop(ctx)

	if len(killed) < 10 {
		t.Fatalf("only %d kills happened before the stream ended", len(killed))
	}
	duplicates := 0
	for k, epoch := range order {
		got := lives[epoch]
		adaptertest.CheckContiguous(t, got)
		if k == 0 && got[0] != 0 {
			t.Fatalf("the first lifetime starts at message %d", got[0])
		}
		if k > 0 {
			prev := order[k-1]
			want, ok := resumedAt[prev]
			if !ok {
				t.Fatalf("lifetime %d follows lifetime %d, which was not killed", k, k-1)
			}
			if got[0] != want {
				t.Fatalf("lifetime %d starts at message %d; the stored confirmation says %d", k, got[0], want)
			}
			duplicates += lives[prev][len(lives[prev])-1] + 1 - got[0]
		}
	}
	t.Logf("%d kills, %d lifetimes, %d messages delivered twice (confirmed but not yet stored as such)", len(killed), len(order), duplicates)
}
