package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// hookRequest is what a webhook was sent.
type hookRequest struct {
	header http.Header
	body   string
}

// recordingHook is a webhook that keeps every request and answers 204.
type recordingHook struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
	got  chan struct{} // a send per request
}

func newRecordingHook(t *testing.T) *recordingHook {
	h := &recordingHook{got: make(chan struct{}, 1024)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{header: r.Header.Clone(), body: string(body)})
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		h.got <- struct{}{}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *recordingHook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// postWith POSTs body with headers hdr and returns the status and answer;
// like post, it retries for a while a 503 that says when to.
func postWith(t *testing.T, url string, hdr map[string]string, body string) (int, map[string]any) {
	t.Helper()
	for range 100 {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]any
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			return resp.StatusCode, answer
		}
		time.Sleep(20 * time.Millisecond) // shorter than Retry-After asks: the test is impatient
	}
	t.Fatalf("POST %s: the window stayed full", url)
	return 0, nil
}

// batchStream is webhookStream with a batching sink (BRIDGE_SINK_BATCH).
func batchStream(t *testing.T, url string, batch int) (api string) {
	t.Helper()
	cfg := baseConfig(t)
	consumerCfg := cfg
	consumerCfg.Role, consumerCfg.Sink, consumerCfg.SinkURL, consumerCfg.SinkBatch = "consumer", "http", url, batch
	consumerCfg.SinkRetryMax = 100 * time.Millisecond
	start(t, consumerCfg, io.Discard)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	start(t, producerCfg, io.Discard)
	waitReady(t, producerCfg.HTTPAddr)
	return "http://" + producerCfg.HTTPAddr + "/v1/messages"
}

// TestWebhookMetadata: a request's Content-Type, traceparent, tracestate
// and Bridge-Meta-* headers travel with its message, through the service
// and a carrier, to the webhook as the same HTTP headers; others do not;
// a message without them goes as application/octet-stream; headers past
// the limits are refused with 400 and take nothing.
func TestWebhookMetadata(t *testing.T) {
	hook := newRecordingHook(t)
	api, _ := webhookStream(t, hook.URL, nil)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	status, answer := postWith(t, api+"?confirm=true", map[string]string{
		"Content-Type":       "application/json; charset=utf-8",
		"Traceparent":        tp,
		"Tracestate":         "vendor=x",
		"Bridge-Meta-Tenant": "acme",
		"bridge-meta-Key":    "k-1",
		"X-Not-Carried":      "no",
	}, `{"a":1}`)
	if status != http.StatusOK {
		t.Fatalf("POST: %d %v", status, answer)
	}
	tooMany := map[string]string{}
	for i := range 70 {
		tooMany["Bridge-Meta-H"+strings.Repeat("x", i)] = "v"
	}
	if status, answer := postWith(t, api, tooMany, "refused"); status != http.StatusBadRequest || !strings.Contains(answer["error"].(string), "headers") {
		t.Errorf("70 Bridge-Meta headers: %d %v, want 400 naming the headers", status, answer)
	}
	if status, answer := postWith(t, api+"?confirm=true", nil, "plain"); status != http.StatusOK || answer["seq_nr"] != float64(2) {
		t.Fatalf("plain POST: %d %v, want 200 as the second message (nothing of the refused one taken)", status, answer)
	}
	reqs := hook.requests()
	if len(reqs) != 2 {
		t.Fatalf("the webhook got %d requests, want 2", len(reqs))
	}
	got := reqs[0].header
	for name, want := range map[string]string{
		"Content-Type": "application/json; charset=utf-8", "Traceparent": tp, "Tracestate": "vendor=x",
		"Bridge-Meta-Tenant": "acme", "Bridge-Meta-Key": "k-1", "X-Not-Carried": "", "X-Bridge-Seq-Nr": "1",
	} {
		if got.Get(name) != want {
			t.Errorf("the webhook's %s is %q, want %q", name, got.Get(name), want)
		}
	}
	if reqs[0].body != `{"a":1}` {
		t.Errorf("the webhook got %q", reqs[0].body)
	}
	if ct := reqs[1].header.Get("Content-Type"); ct != "application/octet-stream" || reqs[1].header.Get("Traceparent") != "" || reqs[1].body != "plain" {
		t.Errorf("a message without metadata came as %q with traceparent %q: %q", ct, reqs[1].header.Get("Traceparent"), reqs[1].body)
	}
}

// TestNDJSONEnvelopes: with "application/x-ndjson; bridge-lines=envelope"
// each line gives its body and headers, the request's Bridge-Meta-* go
// with every line, and a batched webhook carries each line's metadata in
// the same form, JSON bodies byte for byte and others in base64; plain
// NDJSON stays plain lines both ways; a line that is not an envelope is
// refused with 400 naming it, and nothing of its request is taken.
func TestNDJSONEnvelopes(t *testing.T) {
	hook := newRecordingHook(t)
	api := batchStream(t, hook.URL, 100)
	body := `{"headers":{"Content-Type":"application/json","bridge-meta-line":"1"},"body":{"n": 1}}` + "\n" +
		`{"body_base64":"AAEC/w=="}` + "\r\n" +
		`{"headers":{"bridge-meta-batch":"own"},"body":"three"}` + "\n"
	hdr := map[string]string{"Content-Type": "application/x-ndjson; bridge-lines=envelope", "Bridge-Meta-Batch": "b7"}

	// Until the consumer grants its window only one message may go.
	if status, answer := postWith(t, api+"?confirm=true", nil, "opening"); status != http.StatusOK {
		t.Fatalf("POST: %d %v", status, answer)
	}
	bad := `{"body":"ok"}` + "\n" + `{"headers":{"x-other":"1"},"body":"no"}` + "\n"
	if status, answer := postWith(t, api, hdr, bad); status != http.StatusBadRequest || !strings.Contains(answer["error"].(string), "line 2") {
		t.Errorf("a line with a header not carried: %d %v, want 400 naming line 2", status, answer)
	}
	if status, answer := postWith(t, api, hdr, "plain line\n"); status != http.StatusBadRequest || !strings.Contains(answer["error"].(string), "line 1") {
		t.Errorf("a plain line in the envelope form: %d %v, want 400 naming line 1", status, answer)
	}
	if status, answer := postWith(t, api, map[string]string{"Content-Type": "application/x-ndjson; bridge-lines=other"}, "x\n"); status != http.StatusBadRequest {
		t.Errorf("bridge-lines=other: %d %v, want 400", status, answer)
	}
	if status, answer := postWith(t, api+"?confirm=true", hdr, body); status != http.StatusOK || answer["first_seq_nr"] != float64(2) || answer["count"] != float64(3) {
		t.Fatalf("POST envelopes: %d %v, want 200, lines 2 to 4 (nothing of the refused taken)", status, answer)
	}
	if status, answer := postWith(t, api+"?confirm=true", map[string]string{"Content-Type": "application/x-ndjson"}, "p1\np2\n"); status != http.StatusOK {
		t.Fatalf("POST plain lines: %d %v", status, answer)
	}

	type line struct {
		Headers    map[string]string `json:"headers"`
		Body       json.RawMessage   `json:"body"`
		BodyBase64 []byte            `json:"body_base64"`
	}
	var lines []line
	var plain []string
	for _, r := range hook.requests()[1:] {
		sc := bufio.NewScanner(strings.NewReader(r.body))
		for sc.Scan() {
			switch ct := r.header.Get("Content-Type"); ct {
			case "application/x-ndjson; bridge-lines=envelope":
				var l line
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("an envelope that does not parse: %q: %v", sc.Text(), err)
				}
				lines = append(lines, l)
			case "application/x-ndjson":
				plain = append(plain, sc.Text())
			default:
				t.Fatalf("a batch as %q", ct)
			}
		}
	}
	if len(lines) != 3 || strings.Join(plain, ",") != "p1,p2" {
		t.Fatalf("the webhook got envelopes %+v and plain lines %q", lines, plain)
	}
	if string(lines[0].Body) != `{"n": 1}` || lines[0].Headers["content-type"] != "application/json" ||
		lines[0].Headers["bridge-meta-line"] != "1" || lines[0].Headers["bridge-meta-batch"] != "b7" {
		t.Errorf("line 1: %s %v", lines[0].Body, lines[0].Headers)
	}
	if !bytes.Equal(lines[1].BodyBase64, []byte{0, 1, 2, 0xff}) || lines[1].Headers["bridge-meta-batch"] != "b7" {
		t.Errorf("line 2: %v %v", lines[1].BodyBase64, lines[1].Headers)
	}
	if string(lines[2].Body) != `"three"` || lines[2].Headers["bridge-meta-batch"] != "own" {
		t.Errorf("line 3: %s %v (its own bridge-meta-batch wins)", lines[2].Body, lines[2].Headers)
	}
}

// TestDeadLetterKeepsMetadata: a message the webhook refuses is
// dead-lettered with its headers, and `bridge dlq replay` through the
// producer's API sends them again, so the webhook gets the message with
// its metadata.
func TestDeadLetterKeepsMetadata(t *testing.T) {
	var mu sync.Mutex
	refusing := true
	var got []hookRequest
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if refusing {
			http.Error(w, "refused", http.StatusUnprocessableEntity)
			return
		}
		got = append(got, hookRequest{header: r.Header.Clone(), body: string(body)})
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	api, _, consumerCfg := dlqStream(t, hook.URL, t.TempDir(), 1, 3)
	hdr := map[string]string{"Content-Type": "text/plain", "Bridge-Meta-Tenant": "acme"}
	if status, answer := postWith(t, api+"?confirm=true", hdr, "refused once"); status != http.StatusOK {
		t.Fatalf("POST: %d %v", status, answer) // confirmed: dead-lettered
	}
	records := listDLQ(t, consumerCfg)
	if len(records) != 1 {
		t.Fatalf("%d dead letters, want 1", len(records))
	}
	mu.Lock()
	refusing = false
	mu.Unlock()
	replayCfg := consumerCfg
	replayCfg.DLQReplayURL = api
	if err := replayCfg.ValidateDLQ(true); err != nil {
		t.Fatal(err)
	}
	if err := bridge.ReplayDLQ(context.Background(), replayCfg, dlqEnv(t, io.Discard, io.Discard)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].body != "refused once" || got[0].header.Get("Bridge-Meta-Tenant") != "acme" || got[0].header.Get("Content-Type") != "text/plain" {
		t.Fatalf("after the replay the webhook got %+v; want the message with its Bridge-Meta-Tenant and Content-Type", got)
	}
}
