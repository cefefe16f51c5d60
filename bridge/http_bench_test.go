package bridge_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// The HTTP edges' benchmarks: a producer and a consumer in this process
// over tcp on loopback, messages of benchSize bytes, sealed. Each reports
// msgs/s end to end: the ingest ones from the clients' start to the last
// message out of the consumer, the generated ones from the first message
// out to the last. The baseline of each is the same stream fed by the
// generator (ingest) or written to a discarded stdout (egress): the HTTP
// edge's cost is the ratio. The clients and the webhook run in this
// process too, on the same cores.
//
//	go test -run '^$' -bench 'HTTPIngest|WebhookEgress' ./bridge
const (
	benchSize    = 128
	benchClients = 8 // concurrent HTTP clients of the ingest benchmarks
	benchWindow  = 20_000
	benchLines   = 100 // messages per NDJSON request
)

// lineCounter counts the lines written to it and closes done at want; it
// notes when the first came.
type lineCounter struct {
	n     atomic.Int64
	want  int64
	done  chan struct{}
	once  sync.Once
	first time.Time
}

func newLineCounter(want int) *lineCounter {
	return &lineCounter{want: int64(want), done: make(chan struct{})}
}

func (c *lineCounter) add(n int) {
	c.once.Do(func() { c.first = time.Now() })
	if c.n.Add(int64(n)) >= c.want && c.n.Load()-int64(n) < c.want {
		close(c.done)
	}
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.add(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

func (c *lineCounter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d messages arrived", c.n.Load(), c.want)
	}
}

func benchConfig(b *testing.B) bridge.Config {
	cfg := baseConfig(b)
	cfg.Window = benchWindow
	cfg.Secret = secretA // sealed, as a deployment is
	return cfg
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// reportFlow reports the rate from the first message out to the last: a
// producer's start (its secret's key derivation, the connection) is not
// the flow's.
func (c *lineCounter) reportFlow(b *testing.B) {
	b.ReportMetric(float64(b.N)/time.Since(c.first).Seconds(), "msgs/s")
}

// BenchmarkHTTPIngest: messages POSTed to the producer's /v1/messages,
// one a request or benchLines a request (application/x-ndjson), by
// benchClients clients at once, against the generator as the source.
func BenchmarkHTTPIngest(b *testing.B) {
	msg := strings.Repeat("x", benchSize)
	b.Run("generate", func(b *testing.B) {
		cfg := benchConfig(b)
		out := newLineCounter(b.N)
		consumerCfg := cfg
		consumerCfg.Role = "consumer"
		start(b, consumerCfg, out)
		producerCfg := cfg
		producerCfg.Role, producerCfg.Source, producerCfg.GenerateSize, producerCfg.GenerateCount = "producer", "generate", benchSize, b.N
		b.ResetTimer()
		start(b, producerCfg, io.Discard)
		out.wait(b)
		out.reportFlow(b)
	})
	for _, lines := range []int{1, benchLines} {
		name := "single"
		if lines > 1 {
			name = fmt.Sprintf("ndjson-%d", lines)
		}
		b.Run(name, func(b *testing.B) {
			cfg := benchConfig(b)
			out := newLineCounter(b.N)
			url := ndjsonStream(b, cfg, out)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
			body := msg
			contentType := "text/plain"
			if lines > 1 {
				body, contentType = strings.Repeat(msg+"\n", lines), "application/x-ndjson"
			}
			var next atomic.Int64 // messages claimed by the clients
			var wg sync.WaitGroup
			b.ResetTimer()
			at := time.Now()
			for range benchClients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						n := int64(lines)
						claimed := next.Add(n)
						if claimed-n >= int64(b.N) {
							return
						}
						payload := body
						if over := claimed - int64(b.N); over > 0 { // the last request: only what is left
							payload = strings.Repeat(msg+"\n", lines-int(over))
						}
						for !postBench(b, client, url, contentType, payload) {
						}
					}
				}()
			}
			wg.Wait()
			out.wait(b)
			reportRate(b, at)
		})
	}
}

// postBench POSTs one request and reports whether it was taken; a 503 (the
// window is full) is retried at once by the caller: the benchmark measures
// the edge, not Retry-After's second.
func postBench(b *testing.B, client *http.Client, url, contentType, body string) bool {
	resp, err := client.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		b.Error(err)
		return true
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted:
		return true
	case http.StatusServiceUnavailable:
		time.Sleep(100 * time.Microsecond)
		return false
	}
	b.Errorf("POST: %s", resp.Status)
	return true
}

// BenchmarkWebhookEgress: generated messages POSTed by the consumer's
// http sink to a webhook that answers 204 at once, one a request or
// benchLines a request, against the stdout sink (discarded).
func BenchmarkWebhookEgress(b *testing.B) {
	for _, batch := range []int{0, 1, benchLines} {
		name := "stdout"
		switch {
		case batch == 1:
			name = "single"
		case batch > 1:
			name = fmt.Sprintf("batch-%d", batch)
		}
		b.Run(name, func(b *testing.B) {
			cfg := benchConfig(b)
			got := newLineCounter(b.N)
			consumerCfg := cfg
			consumerCfg.Role = "consumer"
			if batch > 0 {
				hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					n := 1
					if batch > 1 {
						n = bytes.Count(body, []byte{'\n'})
					}
					w.WriteHeader(http.StatusNoContent)
					got.add(n)
				}))
				b.Cleanup(hook.Close)
				consumerCfg.Sink, consumerCfg.SinkURL, consumerCfg.SinkBatch = "http", hook.URL, batch
			}
			consumerCfg.HTTPAddr = adaptertest.FreeAddr(b)
			start(b, consumerCfg, got)
			producerCfg := cfg
			producerCfg.Role, producerCfg.Source, producerCfg.GenerateSize, producerCfg.GenerateCount = "producer", "generate", benchSize, b.N
			b.ResetTimer()
			start(b, producerCfg, io.Discard)
			got.wait(b)
			got.reportFlow(b)
		})
	}
}
