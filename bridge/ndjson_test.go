package bridge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// postNDJSON POSTs body as application/x-ndjson; like a well-behaved
// client it retries, for a while, a 503 that says when to, unless once.
func postNDJSON(t *testing.T, url, body string, once bool) (int, map[string]any, http.Header) {
	t.Helper()
	for i := 0; ; i++ {
		resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]any
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if once || i == 200 || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			return resp.StatusCode, answer, resp.Header
		}
		time.Sleep(10 * time.Millisecond) // shorter than Retry-After asks: the test is impatient
	}
}

// ndjsonStream starts a consumer writing to out and a producer with the
// HTTP source as cfg says; it returns the producer's POST /v1/messages.
func ndjsonStream(t testing.TB, cfg bridge.Config, out io.Writer) string {
	t.Helper()
	consumerCfg := cfg
	consumerCfg.Role, consumerCfg.DurableDir = "consumer", ""
	start(t, consumerCfg, out)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	start(t, producerCfg, io.Discard)
	waitReady(t, producerCfg.HTTPAddr)
	return "http://" + producerCfg.HTTPAddr + "/v1/messages"
}

// TestNDJSONIngest: each line of an application/x-ndjson POST is a
// message, taken all or none: 202 with the first and last sequence
// numbers; ?confirm=true 200 once all are confirmed; 503 with Retry-After,
// taking nothing, when the window cannot take them all; 413 over
// BRIDGE_HTTP_BATCH_MAX lines or BRIDGE_MAX_MESSAGE_SIZE bytes; 400 for a
// body without a line. A plain body stays one message.
func TestNDJSONIngest(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Window, cfg.HTTPBatchMax, cfg.MaxMessageSize = 4, 8, 64
	var out adaptertest.Buffer
	url := ndjsonStream(t, cfg, &out)

	status, answer, _ := postNDJSON(t, url, "a\r\nb\n\nc", false)
	if status != http.StatusAccepted || answer["count"] != 3.0 || answer["first_seq_nr"] != 1.0 || answer["last_seq_nr"] != 3.0 || answer["stored"] != false {
		t.Fatalf("3 lines: %d %v", status, answer)
	}
	status, answer, _ = postNDJSON(t, url+"?confirm=true", "d\ne\n", false)
	if status != http.StatusOK || answer["confirmed"] != true || answer["first_seq_nr"] != 4.0 || answer["last_seq_nr"] != 5.0 {
		t.Fatalf("?confirm=true: %d %v", status, answer)
	}
	// Five lines never fit a window of four: refused whole, every time.
	status, answer, hdr := postNDJSON(t, url, "1\n2\n3\n4\n5\n", true)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("5 lines, window 4: %d %v %v", status, answer, hdr)
	}
	status, answer, _ = postNDJSON(t, url, strings.Repeat("x\n", 9), true)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(answer["error"].(string), "BRIDGE_HTTP_BATCH_MAX") {
		t.Errorf("9 lines, limit 8: %d %v", status, answer)
	}
	status, answer, _ = postNDJSON(t, url, strings.Repeat("y", 40)+"\n"+strings.Repeat("z", 40)+"\n", true)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("81 bytes, limit 64: %d %v", status, answer)
	}
	for _, body := range []string{"", "\n\r\n\n"} {
		if status, answer, _ = postNDJSON(t, url, body, true); status != http.StatusBadRequest {
			t.Errorf("%q: %d %v", body, status, answer)
		}
	}
	// Nothing of the refused bodies was taken: the next number is 6.
	status, answer, _ = post(t, url+"?confirm=true", "", "plain\nbody")
	if status != http.StatusOK || answer["seq_nr"] != 6.0 {
		t.Fatalf("plain POST: %d %v", status, answer)
	}
	if got, want := out.String(), "a\nb\nc\nd\ne\nplain\nbody\n"; got != want {
		t.Errorf("the consumer wrote %q, want %q", got, want)
	}
}

// TestNDJSONDurable: with a durable queue the 202 says the lines are
// stored.
func TestNDJSONDurable(t *testing.T) {
	cfg := baseConfig(t)
	cfg.DurableDir = t.TempDir()
	var out adaptertest.Buffer
	url := ndjsonStream(t, cfg, &out)
	status, answer, _ := postNDJSON(t, url, "one\ntwo\n", false)
	if status != http.StatusAccepted || answer["stored"] != true || answer["count"] != 2.0 {
		t.Fatalf("%d %v", status, answer)
	}
}
