package main_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/delivery"
)

// TestWorkerKilled: over every carrier, a work-pulling producer process
// reads 20,000 lines from stdin and three worker processes share them; one
// worker is SIGKILLed mid-stream. The producer still exits 0 (every line
// confirmed), every line reaches a worker, and only lines the killed worker
// had taken appear twice.
func TestWorkerKilled(t *testing.T) {
	const n = 20_000
	workers := []string{"w1", "w2", "w3"}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			vars := append(tr.vars(t), "BRIDGE_MODE=work-pulling", "BRIDGE_WORKER_TIMEOUT=1s",
				"BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_WINDOW=100", "BRIDGE_TCP_LISTEN=producer")
			cleanupWorkerStreams(t, tr.name, vars, workers)
			dir := t.TempDir()
			gate := make(chan struct{})
			producer := startProc(t, paced(n, gate), nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=stdin", "BRIDGE_LOG_LEVEL=info")...)
			// The producer first: with NATS, it embeds the server, and the
			// killed worker must not take the server with it.
			waitForLog(t, producer, "work-pulling producer started")
			outs := map[string]*os.File{}
			procs := map[string]*proc{}
			for _, id := range workers {
				out, err := os.Create(filepath.Join(dir, id))
				if err != nil {
					t.Fatal(err)
				}
				outs[id] = out
				procs[id] = startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer", "BRIDGE_WORKER_ID="+id)...)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("producer:\n%s", producer.stderr.String())
				}
			})
			for _, id := range workers {
				waitForLog(t, producer, `msg="worker joined" `)
				waitForLog(t, producer, "worker_id="+id+" epoch=")
			}
			close(gate) // the lines flow once every worker is served
			waitForLines(t, outs["w1"].Name(), n/20, procs["w1"])
			procs["w1"].cmd.Process.Kill() // SIGKILL
			<-procs["w1"].done
			procs["w1"].done <- nil
			producer.wait(t, "producer", 40*time.Second)
			for _, id := range workers[1:] {
				procs[id].terminate(t, id)
			}
			got := map[string][]int{}
			for _, id := range workers {
				outs[id].Close()
				got[id] = readLines(t, outs[id].Name())
			}
			killed := map[int]bool{}
			for _, v := range got["w1"] {
				killed[v] = true
			}
			count := make([]int, n+1)
			for _, id := range workers {
				seen := map[int]bool{}
				for _, v := range got[id] {
					if v < 1 || v > n || seen[v] {
						t.Fatalf("worker %s wrote line %d twice, or out of range", id, v)
					}
					seen[v] = true
					count[v]++
				}
			}
			dups := 0
			for v := 1; v <= n; v++ {
				switch {
				case count[v] == 0:
					t.Errorf("line %d lost", v)
				case count[v] > 1 && !killed[v]:
					t.Errorf("line %d written %d times, and the killed worker never had it", v, count[v])
				case count[v] > 1:
					dups += count[v] - 1
				}
			}
			t.Logf("lines per worker: w1 %d (killed), w2 %d, w3 %d; %d written twice across the kill",
				len(got["w1"]), len(got["w2"]), len(got["w3"]), dups)
			if log := producer.stderr.String(); !strings.Contains(log, `worker_id=w1 why="silent`) {
				t.Errorf("the producer never took the killed worker for dead:\n%s", log)
			}
			if len(got["w2"]) == 0 || len(got["w3"]) == 0 {
				t.Errorf("a surviving worker got nothing")
			}
		})
	}
}

// cleanupWorkerStreams deletes what the workers' streams leave on a shared
// broker.
func cleanupWorkerStreams(t *testing.T, transport string, vars, workers []string) {
	stream := "bridge"
	for _, v := range vars {
		if s, ok := strings.CutPrefix(v, "BRIDGE_STREAM="); ok {
			stream = s
		}
	}
	switch transport {
	case "amqp":
		url := adaptertest.RabbitMQ(t)
		t.Cleanup(func() {
			for _, id := range workers {
				ws := delivery.WorkerStream(stream, id)
				adaptertest.DeleteQueues(url, "bridge."+ws+".data", "bridge."+ws+".control")
			}
		})
	case "kafka":
		brokers, _ := adaptertest.KafkaOrKfake(t)
		t.Cleanup(func() {
			for _, id := range workers {
				deleteKafkaStream(t, brokers, delivery.WorkerStream(stream, id))
			}
		})
	}
}

// paced returns the lines 1 to n, as `seq 1 n` prints them, 200 every 10
// ms once gate is closed: the stream lasts about a second, so that a worker
// can die in it.
func paced(n int, gate <-chan struct{}) io.Reader {
	return pacedAt(n, 200, gate)
}

// waitForLog polls a process's log until it says what: a process's log has
// no event to wait on.
func waitForLog(t *testing.T, p *proc, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.stderr.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", what, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
