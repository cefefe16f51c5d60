package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// baseConfig is a configuration with every default, as LoadConfig gives it
// with no variables set.
func baseConfig(t testing.TB) bridge.Config {
	t.Helper()
	cfg, err := bridge.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TCPAddr = adaptertest.FreeAddr(t)
	cfg.ResendMin, cfg.ResendMax = 50*time.Millisecond, 500*time.Millisecond
	cfg.LogLevel = "warn"
	return cfg
}

// end runs one end in this process until the test ends.
type end struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, cfg bridge.Config, stdout io.Writer) *end {
	t.Helper()
	return startWith(t, cfg, stdout, nil)
}

// startWith is start with more of the end's log: from Info up, to logs
// as well as the test's log. stdin is the stdin source's input: the
// lines, once each.
func startWith(t testing.TB, cfg bridge.Config, stdout io.Writer, logs io.Writer, stdin ...string) *end {
	t.Helper()
	return startEnv(t, cfg, stdout, logs, nil, stdin...)
}

// startEnv is startWith with edit given the end's Env before it runs.
func startEnv(t testing.TB, cfg bridge.Config, stdout io.Writer, logs io.Writer, edit func(*bridge.Env), stdin ...string) *end {
	t.Helper()
	var err error
	if err = cfg.ValidateRun(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &end{cancel: cancel, done: make(chan error, 1)}
	var log io.Writer = testWriter{t}
	level := slog.LevelWarn
	if logs != nil {
		log, level = io.MultiWriter(log, logs), slog.LevelInfo
	}
	input := ""
	for _, line := range stdin {
		input += line + "\n"
	}
	env := bridge.Env{Stdin: strings.NewReader(input), Stdout: stdout, Stderr: io.Discard, Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: level}))}
	if edit != nil {
		edit(&env)
	}
	go func() { e.done <- bridge.Run(ctx, cfg, env) }()
	t.Cleanup(func() { e.stop(t) })
	return e
}

func (e *end) stop(t testing.TB) {
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		e.done <- nil // a later stop returns at once
	case <-time.After(30 * time.Second):
		t.Error("the end did not stop")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// blockingWriter blocks every write until released: a stuck sink.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// post POSTs body; like a well-behaved client it retries, for a while, a
// 503 that says when to (Retry-After), unless full is wanted.
func post(t *testing.T, url, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	for range 100 {
		status, answer, hdr := postOnce(t, url, token, body)
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			return status, answer, hdr
		}
		time.Sleep(20 * time.Millisecond) // shorter than Retry-After asks: the test is impatient
	}
	return postOnce(t, url, token, body)
}

func postOnce(t *testing.T, url, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer, resp.Header
}

// waitReady polls /readyz: it is the readiness probe's own protocol.
func waitReady(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", addr)
}

// TestHTTPSource: 202 with the sequence number when accepted; with
// ?confirm=true, 200 once the consumer confirmed; 503 with Retry-After when
// the window is full; the bearer token refused and accepted.
func TestHTTPSource(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Window = 4
	consumerCfg := cfg
	consumerCfg.Role = "consumer"
	consumerCfg.HTTPAddr = adaptertest.FreeAddr(t)
	var out adaptertest.Buffer
	start(t, consumerCfg, &out)

	producerCfg := cfg
	producerCfg.Role, producerCfg.Source = "producer", "http"
	producerCfg.HTTPAddr, producerCfg.HTTPToken = adaptertest.FreeAddr(t), "s3cret"
	start(t, producerCfg, io.Discard)
	waitReady(t, producerCfg.HTTPAddr)
	waitReady(t, consumerCfg.HTTPAddr)
	url := "http://" + producerCfg.HTTPAddr + "/v1/messages"

	if status, _, hdr := post(t, url, "", "no token"); status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("without a token: %d", status)
	}
	if status, _, _ := post(t, url, "wrong", "bad token"); status != http.StatusForbidden {
		t.Errorf("with a wrong token: %d", status)
	}
	status, answer, _ := post(t, url, "s3cret", "first")
	if status != http.StatusAccepted || answer["seq_nr"] != float64(1) {
		t.Fatalf("first POST: %d %v", status, answer)
	}
	status, answer, _ = post(t, url+"?confirm=true", "s3cret", "second")
	if status != http.StatusOK || answer["confirmed"] != true || answer["seq_nr"] != float64(2) {
		t.Fatalf("POST ?confirm=true: %d %v", status, answer)
	}
	if got := out.String(); got != "first\nsecond\n" {
		t.Errorf("the consumer wrote %q before confirming", got)
	}
}

// TestHTTPSourceFull: a consumer whose sink is stuck confirms nothing; once
// its window is used up the producer answers 503 with Retry-After instead
// of buffering more.
func TestHTTPSourceFull(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Window = 4
	c, p, stuck, addr := stuckStream(t, cfg)
	url := "http://" + addr + "/v1/messages"

	accepted, full := 0, false
	for i := 0; i < 100 && !full; i++ {
		status, answer, hdr := postOnce(t, url, "", fmt.Sprint("m", i))
		switch status {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			full = true
			if hdr.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			t.Logf("full after %d: %v", accepted, answer)
		default:
			t.Fatalf("POST %d: %d %v", i, status, answer)
		}
	}
	if !full || accepted > 2*cfg.Window {
		t.Errorf("accepted %d messages with a window of %d and a stuck sink", accepted, cfg.Window)
	}
	p.stop(t)
	stuck.release()
	c.stop(t)
}

// TestWebhookSink: a webhook that fails is retried, with backoff, until it
// answers 2xx; only then is the message confirmed. Requests name the
// message.
func TestWebhookSink(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	attempts := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts <= 3 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		bodies = append(bodies, fmt.Sprintf("%s#%s", body, r.Header.Get("X-Bridge-Seq-Nr")))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	api, _ := webhookStream(t, hook.URL, nil)
	url := api + "?confirm=true"
	for _, m := range []string{"alpha", "beta"} {
		if status, answer, _ := post(t, url, "", m); status != http.StatusOK {
			t.Fatalf("POST %s: %d %v", m, status, answer)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, ",") != "alpha#1,beta#2" || attempts != 5 {
		t.Errorf("the webhook got %v in %d attempts; want alpha#1,beta#2 in 5 (3 failures first)", bodies, attempts)
	}
}

// webhookStream starts a consumer whose sink POSTs to url, retrying at
// least every 100 ms, and a producer with the HTTP source; it returns the
// producer's URL of POST /v1/messages, once it is ready, and the
// consumer's HTTP address. With logs, the consumer's log goes there too.
func webhookStream(t *testing.T, url string, logs io.Writer) (api, consumerHTTP string) {
	t.Helper()
	cfg := baseConfig(t)
	consumerCfg := cfg
	consumerCfg.Role, consumerCfg.Sink, consumerCfg.SinkURL = "consumer", "http", url
	consumerCfg.SinkRetryMax = 100 * time.Millisecond
	consumerCfg.HTTPAddr = adaptertest.FreeAddr(t)
	startWith(t, consumerCfg, io.Discard, logs)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	start(t, producerCfg, io.Discard)
	waitReady(t, producerCfg.HTTPAddr)
	return "http://" + producerCfg.HTTPAddr + "/v1/messages", consumerCfg.HTTPAddr
}
