package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
)

// transport gives each test the variables that select a carrier.
type transport struct {
	name string
	vars func(t *testing.T) []string
}

var transports = []transport{
	{"tcp", func(t *testing.T) []string {
		return []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + adaptertest.FreeAddr(t), "BRIDGE_SECRET=e2e-secret-of-the-tests"}
	}},
	{"nats", func(t *testing.T) []string {
		// No NATS_URL: the first process embeds the server, the second uses it.
		return []string{"BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_EMBEDDED_ADDR=" + adaptertest.FreeAddr(t), "BRIDGE_NATS_EMBEDDED_DIR=" + t.TempDir()}
	}},
	{"nats-jetstream", func(t *testing.T) []string {
		return []string{"BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_JETSTREAM=true", "BRIDGE_NATS_EMBEDDED_ADDR=" + adaptertest.FreeAddr(t), "BRIDGE_NATS_EMBEDDED_DIR=" + t.TempDir()}
	}},
	{"amqp", func(t *testing.T) []string {
		url := adaptertest.RabbitMQ(t)
		stream := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
		t.Cleanup(func() { adaptertest.DeleteQueues(url, "bridge."+stream+".data", "bridge."+stream+".control") })
		return []string{"BRIDGE_TRANSPORT=amqp", "BRIDGE_AMQP_URL=" + url, "BRIDGE_STREAM=" + stream}
	}},
	{"kafka", func(t *testing.T) []string {
		// The test Kafka: Apache Kafka under `make test`, kfake in a plain
		// `go test` with none running.
		brokers, _ := adaptertest.KafkaOrKfake(t)
		stream := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
		t.Cleanup(func() { deleteKafkaStream(t, brokers, stream) })
		return []string{"BRIDGE_TRANSPORT=kafka", "BRIDGE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "BRIDGE_STREAM=" + stream}
	}},
}

// deleteKafkaStream deletes the topics and group of a stream the bridge made
// with its default names, once its processes are gone: the test Kafka is
// shared and keeps them.
func deleteKafkaStream(t *testing.T, brokers []string, stream string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kafka.New(ctx, kafka.Config{Brokers: brokers})
	if err == nil {
		err = c.DeleteStream(ctx, stream)
		c.Close()
	}
	if err != nil {
		t.Errorf("cleanup: delete Kafka stream %s: %v", stream, err)
	}
}

// proc is a bridge process running in the background.
type proc struct {
	cmd    *exec.Cmd
	stderr adaptertest.Buffer
	done   chan error
}

func startProc(t *testing.T, stdin io.Reader, stdout *os.File, vars ...string) *proc {
	t.Helper()
	p := &proc{cmd: command(nil, vars...), done: make(chan error, 1)}
	if stdin != nil && stdin != (*strings.Reader)(nil) {
		p.cmd.Stdin = stdin
	}
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// wait waits for the process to exit and fails the test unless it exited 0.
func (p *proc) wait(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, p.stderr.String())
		}
	case <-time.After(timeout):
		p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.done
		p.done <- nil
		t.Fatalf("%s did not finish in %v\n%s", what, timeout, p.stderr.String())
	}
}

func (p *proc) terminate(t *testing.T, what string) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, what+" after SIGTERM", 30*time.Second)
}

// numbered returns the lines 1 to n, as `seq 1 n` prints them.
func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestStdinToStdout: over every carrier, a producer process reads 100,000
// lines from stdin and exits once all are confirmed; a consumer process
// writes them to stdout. The output is the input.
func TestStdinToStdout(t *testing.T) {
	const n = 100_000
	input := numbered(n)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			vars := append(tr.vars(t), "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s")
			out, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			consumer := startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer")...)
			producer := startProc(t, strings.NewReader(input), nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=stdin")...)
			producer.wait(t, "producer", 2*time.Minute)
			consumer.terminate(t, "consumer")
			got, _ := os.ReadFile(out.Name())
			if string(got) != input {
				lines := strings.Split(string(got), "\n")
				t.Fatalf("the consumer wrote %d lines, not the %d of the input; first %q, last %q\n%s",
					len(lines)-1, n, lines[0], lines[max(0, len(lines)-2)], consumer.stderr.String())
			}
		})
	}
}

// TestConsumerKilled: the consumer process is killed with SIGKILL mid-stream
// and started again. The union of its outputs holds every line, each run's
// lines in order.
func TestConsumerKilled(t *testing.T) {
	const n = 100_000
	input := numbered(n)
	for _, tr := range transports {
		if tr.name == "nats" {
			continue // core NATS with its server embedded in the killed process: nothing survives by design
		}
		t.Run(tr.name, func(t *testing.T) {
			// The producer starts first, so with NATS it is the one that
			// embeds the server and the consumer can die without taking it.
			vars := append(tr.vars(t), "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_WINDOW=200")
			dir := t.TempDir()
			producer := startProc(t, strings.NewReader(input), nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=stdin")...)
			var runs [][]int
			for run := range 2 {
				out, _ := os.Create(filepath.Join(dir, fmt.Sprint("out", run)))
				consumer := startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer")...)
				if run == 0 {
					waitForLines(t, out.Name(), n/3, consumer)
					consumer.cmd.Process.Kill() // SIGKILL
					<-consumer.done
					consumer.done <- nil
				} else {
					producer.wait(t, "producer", 2*time.Minute)
					consumer.terminate(t, "consumer")
				}
				out.Close()
				runs = append(runs, readLines(t, out.Name()))
			}
			for i, got := range runs {
				adaptertest.CheckContiguous(t, got)
				t.Logf("run %d: lines %d to %d", i, got[0], got[len(got)-1])
			}
			for i := range runs {
				for j := range runs[i] {
					runs[i][j]-- // lines count from 1
				}
			}
			dups := adaptertest.CheckLifetimes(t, runs, n)
			t.Logf("%d lines written twice across the kill", dups)
		})
	}
}

// waitForLines polls the file until it holds at least n lines: a process's
// output has no event to wait on.
func waitForLines(t *testing.T, path string, n int, p *proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte{'\n'}) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d lines\n%s", path, n, p.stderr.String())
}

// readLines reads the numbers a consumer wrote, ignoring a last line cut
// short by the kill (it was never confirmed).
func readLines(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var got []int
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		v, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("%s: line %q", path, line)
		}
		got = append(got, v)
	}
	return got
}
