package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// receiver is a webhook that keeps, in order, the messages it accepted:
// the lines of an NDJSON request, or a plain body. refuse says, for a
// message, the status to answer its request with instead (0: accept).
type receiver struct {
	mu     sync.Mutex
	got    []string
	tries  map[string]int // POSTs that carried each message
	refuse func(msg string) int
	want   int           // once got holds want messages, reached is closed
	reach  chan struct{} // closed at want
	bad    []string      // requests whose headers do not name their lines
}

func newReceiver(want int, refuse func(string) int) *receiver {
	return &receiver{tries: map[string]int{}, refuse: refuse, want: want, reach: make(chan struct{})}
}

// serve serves h until the test ends and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	msgs := []string{string(body)}
	if req.Header.Get("Content-Type") == "application/x-ndjson" {
		msgs = strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		first, _ := strconv.Atoi(req.Header.Get("X-Bridge-First-Seq-Nr"))
		last, _ := strconv.Atoi(req.Header.Get("X-Bridge-Last-Seq-Nr"))
		if last-first+1 != len(msgs) || req.Header.Get("X-Bridge-Count") != strconv.Itoa(len(msgs)) {
			r.mu.Lock()
			r.bad = append(r.bad, fmt.Sprintf("%d lines, seq %d-%d", len(msgs), first, last))
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	status := 0
	for _, m := range msgs {
		r.tries[m]++
		if s := r.refuse(m); s != 0 {
			status = s
		}
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	r.got = append(r.got, msgs...)
	if len(r.got) >= r.want && r.want > 0 {
		close(r.reach)
		r.want = 0
	}
	w.WriteHeader(http.StatusNoContent)
}

// wait waits until the receiver has accepted its want messages.
func (r *receiver) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-r.reach:
	case <-time.After(timeout):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("the webhook accepted %d messages in %v", len(r.got), timeout)
	}
}

func (r *receiver) accepted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// msgName is message i of a test's stream.
func msgName(i int) string { return fmt.Sprintf("m%05d", i) }

// sendNumbered POSTs messages from to to of msgName as NDJSON batches of
// 100 to the producer's api.
func sendNumbered(t *testing.T, api string, from, to int) {
	t.Helper()
	for i := from; i <= to; i += 100 {
		var b strings.Builder
		for j := i; j < i+100 && j <= to; j++ {
			b.WriteString(msgName(j) + "\n")
		}
		// A 503 says the window is full for now: ask again, as a client
		// following Retry-After would, only sooner.
		deadline := time.Now().Add(time.Minute)
		for {
			status, answer, _ := postNDJSON(t, api, b.String(), false)
			if status == http.StatusAccepted {
				break
			}
			if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("POST of %d: %d %v", i, status, answer)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// dlqStream starts a consumer whose http sink, batching batch messages,
// POSTs to hook and dead-letters to dir, and a producer with the HTTP
// source; it returns the producer's POST /v1/messages, the consumer's
// HTTP address and the consumer's configuration.
func dlqStream(t *testing.T, hook, dir string, batch, attempts int) (api, consumerHTTP string, consumerCfg bridge.Config) {
	t.Helper()
	cfg := baseConfig(t)
	consumerCfg = cfg
	consumerCfg.Role, consumerCfg.Sink, consumerCfg.SinkURL = "consumer", "http", hook
	consumerCfg.SinkRetryMax, consumerCfg.SinkBatch, consumerCfg.SinkMaxAttempts = 50*time.Millisecond, batch, attempts
	if dir != "" {
		consumerCfg.DLQ = "file://" + filepath.ToSlash(dir)
	}
	consumerCfg.HTTPAddr = adaptertest.FreeAddr(t)
	start(t, consumerCfg, io.Discard)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	start(t, producerCfg, io.Discard)
	waitReady(t, producerCfg.HTTPAddr)
	return "http://" + producerCfg.HTTPAddr + "/v1/messages", consumerCfg.HTTPAddr, consumerCfg
}

// metricIs polls an end's /metrics until the sample is want: the metric
// is how the end tells, and it changes after the event.
func metricIs(t *testing.T, addr, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := metric(t, addr, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dlqEnv(t *testing.T, stdout, stderr io.Writer) bridge.Env {
	return bridge.Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

// listDLQ runs `bridge dlq list` and returns the records it printed.
func listDLQ(t *testing.T, cfg bridge.Config) []bridge.DeadLetter {
	t.Helper()
	var out, summary bytes.Buffer
	if err := cfg.ValidateDLQ(false); err != nil {
		t.Fatal(err)
	}
	if err := bridge.ListDLQ(context.Background(), cfg, dlqEnv(t, &out, &summary)); err != nil {
		t.Fatal(err)
	}
	var records []bridge.DeadLetter
	dec := json.NewDecoder(&out)
	for dec.More() {
		var dl bridge.DeadLetter
		if err := dec.Decode(&dl); err != nil {
			t.Fatal(err)
		}
		records = append(records, dl)
	}
	if !strings.Contains(summary.String(), fmt.Sprintf("%d dead letters", len(records))) {
		t.Errorf("summary %q for %d records", summary.String(), len(records))
	}
	return records
}

// TestPoisonMessage: among 10,000 messages one the webhook never takes is
// dead-lettered, after BRIDGE_SINK_MAX_ATTEMPTS failures (a 500) or at
// once (a 422), alone even when it came in a batch of 100, while the others
// arrive in order; the metrics count it. `bridge dlq replay` brings it
// back once the webhook takes it, and removes it from the queue.
func TestPoisonMessage(t *testing.T) {
	for _, tc := range []struct {
		name          string
		n, poison     int
		batch, status int
		reason        string
	}{
		// A POST a message is slower: fewer messages.
		{"single/500", 1000, 500, 1, http.StatusInternalServerError, bridge.ReasonAttempts},
		{"batch/422", 10_000, 5_000, 100, http.StatusUnprocessableEntity, bridge.ReasonRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, poison := tc.n, tc.poison
			var mu sync.Mutex
			refusing := true
			hook := newReceiver(n-1, func(m string) int {
				mu.Lock()
				defer mu.Unlock()
				if m == msgName(poison) && refusing {
					return tc.status
				}
				return 0
			})
			url := serve(t, hook)
			const attempts = 3
			api, consumerHTTP, consumerCfg := dlqStream(t, url, t.TempDir(), tc.batch, attempts)
			sendNumbered(t, api, 1, n)
			hook.wait(t, time.Minute)
			metricIs(t, consumerHTTP, "bridge_dlq_waiting", 1)

			got := hook.accepted()
			for i, j := 0, 1; i < len(got); i, j = i+1, j+1 {
				if j == poison {
					j++
				}
				if got[i] != msgName(j) {
					t.Fatalf("the webhook's message %d is %s, want %s", i, got[i], msgName(j))
				}
			}
			hook.mu.Lock()
			tries := hook.tries[msgName(poison)]
			hook.mu.Unlock()
			records := listDLQ(t, consumerCfg)
			if len(records) != 1 {
				t.Fatalf("%d dead letters: %+v", len(records), records)
			}
			dl := records[0]
			if string(dl.Body()) != msgName(poison) || dl.Reason != tc.reason || dl.Status != tc.status ||
				dl.Metadata.SeqNr != uint64(poison) || dl.Metadata.Stream != consumerCfg.Stream || dl.Metadata.ProducerID == "" ||
				dl.Attempts != tries || !strings.Contains(dl.Error, strconv.Itoa(tc.status)) {
				t.Errorf("dead letter %+v (the webhook saw it %d times)", dl, tries)
			}
			switch {
			case tc.reason == bridge.ReasonAttempts && tries != attempts:
				t.Errorf("dead-lettered after %d attempts, want %d", tries, attempts)
			case tc.reason == bridge.ReasonRefused && tries > 8: // its batch, then halves down to it: log2(100) + 1
				t.Errorf("a refused message tried %d times", tries)
			}
			if v := metric(t, consumerHTTP, `bridge_dead_letters_total{reason="`+tc.reason+`"`); v != 1 {
				t.Errorf("bridge_dead_letters_total{reason=%q} = %v", tc.reason, v)
			}
			if v := metric(t, consumerHTTP, "bridge_dlq_oldest_age_seconds"); v <= 0 || v > 60 {
				t.Errorf("bridge_dlq_oldest_age_seconds = %v", v)
			}

			// Replayed through the producer's API once the webhook takes it.
			mu.Lock()
			refusing = false
			mu.Unlock()
			replayCfg := consumerCfg
			replayCfg.DLQReplayURL = api
			if err := replayCfg.ValidateDLQ(true); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := bridge.ReplayDLQ(context.Background(), replayCfg, dlqEnv(t, &out, io.Discard)); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "replayed 1 of 1") {
				t.Errorf("replay said %q", out.String())
			}
			if got := hook.accepted(); len(got) != n || got[n-1] != msgName(poison) {
				t.Errorf("after the replay the webhook has %d messages, the last %q", len(got), got[len(got)-1])
			}
			if records := listDLQ(t, consumerCfg); len(records) != 0 {
				t.Errorf("still in the queue after replay: %+v", records)
			}
			metricIs(t, consumerHTTP, "bridge_dlq_waiting", 0)
			hook.mu.Lock()
			if len(hook.bad) > 0 {
				t.Errorf("requests whose headers do not match their lines: %v", hook.bad)
			}
			hook.mu.Unlock()
		})
	}
}

// TestBatchedWebhookFailingAtRandom: batches of 100 to a webhook that
// fails a quarter of its requests at random (500, 503, or the connection
// dropped without an answer) arrive whole, in order, each message once;
// without a dead-letter queue nothing is given up.
func TestBatchedWebhookFailingAtRandom(t *testing.T) {
	const n = 10_000
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 20))
	var mu sync.Mutex
	hook := newReceiver(n, func(string) int { return 0 })
	failing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := rng.IntN(12)
		mu.Unlock()
		switch fail {
		case 0:
			w.WriteHeader(http.StatusInternalServerError)
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
		default:
			hook.ServeHTTP(w, r)
		}
	})
	api, consumerHTTP, _ := dlqStream(t, serve(t, failing), "", 100, 10)
	sendNumbered(t, api, 1, n)
	hook.wait(t, time.Minute)
	got := hook.accepted()
	for i := range got {
		if got[i] != msgName(i+1) {
			t.Fatalf("message %d is %s, want %s", i, got[i], msgName(i+1))
		}
	}
	if len(got) != n {
		t.Fatalf("%d messages, want %d", len(got), n)
	}
	if len(hook.bad) > 0 {
		t.Errorf("requests whose headers do not match their lines: %v", hook.bad)
	}
	t.Logf("%v failed attempts", metric(t, consumerHTTP, "bridge_sink_failures_total"))
}

// TestDLQUnwritableStopsConsumer: a dead letter that cannot be recorded
// stops the consumer with an error naming the queue; the message is not
// confirmed, and nothing after it is delivered.
func TestDLQUnwritableStopsConsumer(t *testing.T) {
	dir := t.TempDir()
	hook := newReceiver(0, func(m string) int {
		if m == "poison" {
			return http.StatusBadRequest
		}
		return 0
	})
	url := serve(t, hook)
	cfg := baseConfig(t)
	consumerCfg := cfg
	consumerCfg.Role, consumerCfg.Sink, consumerCfg.SinkURL, consumerCfg.DLQ = "consumer", "http", url, "file://"+filepath.ToSlash(dir)
	if err := consumerCfg.ValidateRun(); err != nil {
		t.Fatal(err)
	}
	var logs adaptertest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		ran <- bridge.Run(ctx, consumerCfg, bridge.Env{Stdout: io.Discard, Stderr: io.Discard, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	}()
	// The queue opened; now its records cannot be written.
	waitFor(t, func() bool { return strings.Contains(logs.String(), "dead-letter queue on") })
	if err := os.Mkdir(filepath.Join(dir, consumerCfg.Stream+".dlq.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	producerCfg.ShutdownTimeout = time.Second // its consumer is gone
	p := start(t, producerCfg, io.Discard)
	waitReady(t, producerCfg.HTTPAddr)
	api := "http://" + producerCfg.HTTPAddr + "/v1/messages"
	if status, answer, _ := postNDJSON(t, api, "first\npoison\nafter\n", false); status != http.StatusAccepted {
		t.Fatalf("POST: %d %v", status, answer)
	}
	select {
	case err := <-ran:
		if err == nil || !strings.Contains(err.Error(), "dead-letter queue") || !strings.Contains(err.Error(), "nothing of the batch is confirmed") {
			t.Fatalf("the consumer stopped with %v", err)
		}
		t.Logf("the consumer stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not stop")
	}
	if got := hook.accepted(); strings.Join(got, ",") != "first" {
		t.Errorf("the webhook accepted %v", got)
	}
	p.stop(t)
}

// waitFor polls cond, for what has no event to wait on (a log line).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeadLetterReasons: with a DLQ, a 4xx but 408 and 429 dead-letters a
// message at once; 408, 429, a 5xx, a redirect and no answer at all count
// as attempts, up to BRIDGE_SINK_MAX_ATTEMPTS.
func TestDeadLetterReasons(t *testing.T) {
	const attempts = 2
	for _, tc := range []struct {
		status   int // 0: the connection is dropped without an answer
		reason   string
		attempts int
	}{
		{http.StatusBadRequest, bridge.ReasonRefused, 1},
		{http.StatusNotFound, bridge.ReasonRefused, 1},
		{http.StatusRequestTimeout, bridge.ReasonAttempts, attempts},
		{http.StatusTooManyRequests, bridge.ReasonAttempts, attempts},
		{http.StatusBadGateway, bridge.ReasonAttempts, attempts},
		{http.StatusFound, bridge.ReasonAttempts, attempts},
		{0, bridge.ReasonAttempts, attempts},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			hook := newReceiver(2, func(string) int { return 0 })
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if string(body) != "poison" {
					r.Body = io.NopCloser(bytes.NewReader(body))
					hook.ServeHTTP(w, r)
					return
				}
				if tc.status == 0 {
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						conn.Close()
					}
					return
				}
				if tc.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			api, _, consumerCfg := dlqStream(t, serve(t, h), t.TempDir(), 1, attempts)
			for _, m := range []string{"first", "poison", "last"} {
				if status, answer, _ := post(t, api, "", m); status != http.StatusAccepted {
					t.Fatalf("POST %s: %d %v", m, status, answer)
				}
			}
			hook.wait(t, 30*time.Second)
			waitFor(t, func() bool { return len(listDLQ(t, consumerCfg)) == 1 })
			dl := listDLQ(t, consumerCfg)[0]
			if dl.Reason != tc.reason || dl.Attempts != tc.attempts || dl.Status != tc.status || dl.Error == "" {
				t.Errorf("dead letter %+v; want reason %s after %d attempts", dl, tc.reason, tc.attempts)
			}
			if got := strings.Join(hook.accepted(), ","); got != "first,last" {
				t.Errorf("the webhook took %s", got)
			}
		})
	}
}
