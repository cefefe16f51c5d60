package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
)

// get fetches a URL, returning the status and body (0 if it did not answer).
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// waitStatus polls url until it answers status: probes are polled by
// design.
func waitStatus(t *testing.T, url string, status int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, body := get(url); code == status {
			return body
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := get(url)
	t.Fatalf("%s answers %d %q; want %d", url, code, body, status)
	return ""
}

// TestDurableAcceptSurvivesSIGKILL: with BRIDGE_DURABLE_DIR, the HTTP
// source's 202 means the message survives a crash. A producer takes 100
// messages while no consumer exists, is killed with SIGKILL, and is started
// again on the same directory: the consumer, started last, gets all 100.
func TestDurableAcceptSurvivesSIGKILL(t *testing.T) {
	tcpAddr, httpAddr := adaptertest.FreeAddr(t), adaptertest.FreeAddr(t)
	vars := []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + tcpAddr, "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s"}
	producerVars := append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR="+httpAddr,
		"BRIDGE_DURABLE_DIR="+t.TempDir(), "BRIDGE_WINDOW=1000")

	// The consumer's window does not exist yet: the producer takes only the
	// first message until one does. The messages go to one producer in turn.
	first := startProc(t, nil, nil, producerVars...)
	waitStatus(t, "http://"+httpAddr+"/healthz", http.StatusOK)
	status, answer := postAccepted(t, "http://"+httpAddr+"/v1/messages", "message 1")
	if status != http.StatusAccepted || answer["stored"] != true {
		t.Fatalf("POST: %d %v\n%s", status, answer, first.stderr.String())
	}
	first.cmd.Process.Kill() // SIGKILL: nothing was delivered
	<-first.done
	first.done <- nil

	out, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	defer out.Close()
	second := startProc(t, nil, nil, producerVars...)
	consumer := startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer")...)
	waitStatus(t, "http://"+httpAddr+"/readyz", http.StatusOK)
	for i := 2; i <= 100; i++ {
		if status, _ := postAccepted(t, "http://"+httpAddr+"/v1/messages", fmt.Sprint("message ", i)); status != http.StatusAccepted {
			t.Fatalf("POST %d: %d", i, status)
		}
	}
	second.cmd.Process.Kill()
	<-second.done
	second.done <- nil
	third := startProc(t, nil, nil, producerVars...)
	waitStatus(t, "http://"+httpAddr+"/readyz", http.StatusOK) // up, and its signal handler too
	waitForLines(t, out.Name(), 100, consumer)
	third.terminate(t, "producer")
	consumer.terminate(t, "consumer")

	data, _ := os.ReadFile(out.Name())
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		seen[line] = true
	}
	for i := 1; i <= 100; i++ {
		if !seen[fmt.Sprint("message ", i)] {
			t.Fatalf("message %d lost across the SIGKILLs; the consumer wrote:\n%s", i, data)
		}
	}
}

// postAccepted POSTs one message and, while the producer answers 503 (no
// room yet: before its first start-up it may not take a message, and a full
// window refuses one), asks again as Retry-After says, only much sooner; it
// returns the first other answer and its JSON body.
func postAccepted(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post(url, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]any
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return resp.StatusCode, answer
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGracefulStop: SIGTERM makes a producer stop taking messages, deliver
// what it took, and exit 0; nothing it took is missing at the consumer.
func TestGracefulStop(t *testing.T) {
	vars := []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + adaptertest.FreeAddr(t), "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s"}
	out, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	defer out.Close()
	consumer := startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer")...)
	producer := startProc(t, nil, nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=generate",
		"BRIDGE_GENERATE_RATE=20000", "BRIDGE_GENERATE_SIZE=40", "BRIDGE_LOG_LEVEL=info")...)
	waitForLines(t, out.Name(), 5000, consumer)
	producer.terminate(t, "producer")
	if !strings.Contains(producer.stderr.String(), "producer stopped") {
		t.Errorf("no orderly stop logged:\n%s", producer.stderr.String())
	}
	consumer.terminate(t, "consumer")
	data, _ := os.ReadFile(out.Name())
	var got []int
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var n int
		fmt.Sscan(line, &n)
		got = append(got, n)
	}
	adaptertest.CheckContiguous(t, got)
	if got[0] != 1 {
		t.Fatalf("first line %d", got[0])
	}
	t.Logf("%d messages, all delivered before the producer exited", len(got))
}

// TestHealthReadyMetrics: /healthz answers at once; /readyz only once the
// carrier is connected; /metrics has the protocol's counters.
func TestHealthReadyMetrics(t *testing.T) {
	tcpAddr, httpAddr := adaptertest.FreeAddr(t), adaptertest.FreeAddr(t)
	vars := []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + tcpAddr}
	consumer := startProc(t, nil, nil, append(vars, "BRIDGE_ROLE=consumer", "BRIDGE_HTTP_ADDR="+httpAddr, "BRIDGE_HTTP_TOKEN=x")...)
	base := "http://" + httpAddr
	waitStatus(t, base+"/healthz", http.StatusOK)
	if body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "not connected") {
		t.Errorf("/readyz before any producer: %q", body)
	}
	apiAddr := adaptertest.FreeAddr(t)
	producer := startProc(t, nil, nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR="+apiAddr)...)
	waitStatus(t, base+"/readyz", http.StatusOK)
	waitStatus(t, "http://"+apiAddr+"/readyz", http.StatusOK)
	for _, m := range []string{"one", "two", "three"} {
		resp, err := http.Post("http://"+apiAddr+"/v1/messages?confirm=true", "text/plain", strings.NewReader(m))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %v %v", m, resp, err)
		}
		resp.Body.Close()
	}
	producerMetrics := waitStatus(t, "http://"+apiAddr+"/metrics", http.StatusOK)
	if !strings.Contains(producerMetrics, `bridge_confirmed_seq_nr{role="producer",stream="bridge",transport="tcp"} 3`) {
		t.Errorf("producer /metrics:\n%s", grepLines(producerMetrics, "bridge_"))
	}
	producer.terminate(t, "producer")
	metrics := waitStatus(t, base+"/metrics", http.StatusOK)
	for _, m := range []string{"bridge_messages_delivered_total", "bridge_duplicates_dropped_total", "bridge_window", "bridge_connected", "bridge_reconnects_total", "bridge_latency_seconds_bucket", `role="consumer"`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if !strings.Contains(metrics, `bridge_messages_delivered_total{role="consumer",stream="bridge",transport="tcp"} 3`) {
		t.Errorf("/metrics does not count the 3 deliveries:\n%s", grepLines(metrics, "bridge_messages_delivered"))
	}
	consumer.terminate(t, "consumer")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDemo: `bridge demo` runs both ends on loopback with nothing
// installed, and reports every message delivered, none lost.
func TestDemo(t *testing.T) {
	for _, transport := range []string{"tcp", "nats"} {
		code, stdout, stderr := output(t, []string{"demo"}, "BRIDGE_TRANSPORT="+transport, "BRIDGE_GENERATE_COUNT=20000")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", transport, code, stdout, stderr)
		}
		for _, want := range []string{"delivered   20000", "duplicates  0", "lost        0", "latency"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: the summary lacks %q:\n%s", transport, want, stdout)
			}
		}
	}
}
