package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	natscarrier "github.com/bridge-mq/bridge/adapters/nats"
	"github.com/bridge-mq/bridge/bridge"
)

// A secret of each end, for the tests that give two ends different ones.
const (
	secretA = "the first secret of these tests"
	secretB = "the other secret of these tests"
)

// signallingWriter is a stuck sink that says when a write reached it.
type signallingWriter struct {
	blockingWriter
	wrote   chan struct{}
	release func() // lets every write through; idempotent
}

func (w signallingWriter) Write(p []byte) (int, error) {
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.blockingWriter.Write(p)
}

// stuckStream starts a consumer with cfg whose sink takes nothing until
// released, and a producer with the HTTP source, both stopping within a
// second; it returns them once the producer is ready, with the sink and
// the producer's HTTP address. The sink is released when the test ends at
// the latest, before the ends stop (cleanups run last first), so that a
// failed test still stops.
func stuckStream(t *testing.T, cfg bridge.Config) (consumer, producer *end, sink signallingWriter, addr string) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	sink = signallingWriter{blockingWriter{release: ch}, make(chan struct{}, 1), func() { once.Do(func() { close(ch) }) }}
	cfg.ShutdownTimeout = time.Second
	consumerCfg := cfg
	consumerCfg.Role = "consumer"
	consumer = start(t, consumerCfg, sink)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	producer = start(t, producerCfg, io.Discard)
	t.Cleanup(sink.release)
	waitReady(t, producerCfg.HTTPAddr)
	return consumer, producer, sink, producerCfg.HTTPAddr
}

// postStatus POSTs body and returns the answer's status, or 0 if there
// was none: for a goroutine of a test, which must not stop the test.
func postStatus(url, body string) int {
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric reads one sample of a metric from an end's /metrics: the first
// line that starts with name (and the first of its labels, if given).
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name) && strings.ContainsRune(" {,", rune(line[len(name)])) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("%s exports no %s", addr, name)
	return 0
}

// readyzSays polls an end's /readyz until it answers 503 with want (probes
// are polled by design), and fails the test if it does not within 20 s.
func readyzSays(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %q", resp.StatusCode, body)
			if resp.StatusCode == http.StatusServiceUnavailable && string(body) == want+"\n" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz answers %s; want 503 %q", addr, last, want)
}

// TestWebhookRedirectIsNotFollowed: a webhook that answers 302 to a URL
// that would answer 200 has not taken the message: the attempt failed, is
// logged and retried, the message stays unconfirmed, and the URL redirected
// to is never asked. Once the webhook answers 2xx, the message is
// delivered and confirmed: nothing lost.
func TestWebhookRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1) // a GET here, from a followed redirect, would "confirm" a message nobody got
	}))
	defer target.Close()
	var redirecting atomic.Bool
	redirecting.Store(true)
	var mu sync.Mutex
	var bodies []string
	redirected := make(chan struct{}, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirecting.Load() {
			http.Redirect(w, r, target.URL+"/moved", http.StatusFound)
			redirected <- struct{}{}
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Method+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	var logs adaptertest.Buffer
	api, consumerHTTP := webhookStream(t, hook.URL, &logs)
	confirmed := make(chan int, 1)
	go func() { confirmed <- postStatus(api+"?confirm=true", "alpha") }()
	for range 4 { // the 4th attempt follows the 3rd's failure, counted
		select {
		case <-redirected:
		case status := <-confirmed:
			t.Fatalf("the message was confirmed (%d) while the webhook only redirected", status)
		case <-time.After(30 * time.Second):
			t.Fatal("the webhook was not asked again after its redirect")
		}
	}
	if n := metric(t, consumerHTTP, "bridge_sink_failures_total"); n < 3 {
		t.Errorf("bridge_sink_failures_total = %v after 4 redirects; want every failure counted", n)
	}
	if n := strings.Count(logs.String(), "webhook failed"); n != 1 {
		t.Errorf("%d warnings of the failures within a second; want 1 (at most one per 10 s)", n)
	}
	redirecting.Store(false)
	if status := <-confirmed; status != http.StatusOK {
		t.Fatalf("POST ?confirm=true: %d once the webhook took the message", status)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, ",") != "POST alpha" {
		t.Errorf("the webhook got %q; want the message, POSTed, once", bodies)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the URL redirected to was asked %d times: the redirect was followed", n)
	}
	if !strings.Contains(logs.String(), "302 Found, a redirect, which is not followed") {
		t.Errorf("the log does not say the webhook redirected:\n%s", logs.String())
	}
}

// TestWebhookURLIsRedacted: the webhook URL's user info and query (a
// password, a token) appear nowhere in the log, whether the webhook
// answers with an error or the connection fails.
func TestWebhookURLIsRedacted(t *testing.T) {
	var attempts atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch attempts.Add(1) {
		case 1: // no answer: the client's error names the URL it asked
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		case 2:
			http.Error(w, "not yet", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer hook.Close()
	sinkURL := strings.Replace(hook.URL, "http://", "http://hookuser:hookpassword@", 1) + "/in?token=tokenvalue"

	var logs adaptertest.Buffer
	api, _ := webhookStream(t, sinkURL, &logs)
	if status, answer, _ := post(t, api+"?confirm=true", "", "m"); status != http.StatusOK {
		t.Fatalf("POST: %d %v", status, answer)
	}
	if attempts.Load() != 3 {
		t.Fatalf("%d attempts; want 3", attempts.Load())
	}
	got := logs.String()
	if !strings.Contains(got, "webhook failed") || !strings.Contains(got, "http://redacted@127.0.0.1") {
		t.Errorf("the log does not show the failure with the URL redacted:\n%s", got)
	}
	for _, secret := range []string{"hookuser", "hookpassword", "tokenvalue"} {
		if strings.Contains(got, secret) {
			t.Errorf("the log shows %q:\n%s", secret, got)
		}
	}
}

// TestHTTPTimeouts: a request whose body stalls is cut by the server's
// timeout (BRIDGE_HTTP_TIMEOUT); a ?confirm=true request whose body is in
// waits for the consumer's confirmation as long as it takes, beyond it.
func TestHTTPTimeouts(t *testing.T) {
	const timeout = time.Second
	cfg := baseConfig(t)
	cfg.HTTPTimeout = timeout
	c, p, stuck, addr := stuckStream(t, cfg)
	confirmed := make(chan int, 1)
	go func() { confirmed <- postStatus("http://"+addr+"/v1/messages?confirm=true", "waits") }()
	<-stuck.wrote // the consumer has it and does not confirm

	// 10 bytes of a 100-byte body, then nothing.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := time.Now()
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: bridge\r\nContent-Length: 100\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(20 * timeout)) // a bound on the test, far beyond the server's
	answer, err := io.ReadAll(conn)
	cut := time.Since(sent)
	if err != nil {
		t.Fatalf("the stalled request was not cut by the server: %v after %v (answer %q)", err, cut, answer)
	}
	if cut < timeout*8/10 {
		t.Errorf("the stalled request was cut after %v, before the timeout of %v", cut, timeout)
	}
	t.Logf("stalled body cut after %v: %q", cut, firstLine(answer))

	// The confirmation wait has outlived the timeout by now; it goes on.
	time.Sleep(timeout) // nothing to await: it must not end
	select {
	case status := <-confirmed:
		t.Fatalf("the ?confirm=true request ended (%d) before the consumer confirmed", status)
	default:
	}
	stuck.release()
	if status := <-confirmed; status != http.StatusOK {
		t.Fatalf("POST ?confirm=true: %d once confirmed, %v after it was sent", status, time.Since(sent))
	}
	p.stop(t)
	c.stop(t)
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}

// TestFullWindowRefusedBeforeBody: with the consumer's window full, a POST
// is answered 503 with Retry-After as soon as its headers are in: the
// client need not send a body of 1 MB the producer could not take.
func TestFullWindowRefusedBeforeBody(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Window = 2
	c, p, stuck, addr := stuckStream(t, cfg)
	url := "http://" + addr + "/v1/messages"
	// The consumer confirms nothing: once the producer holds a window's
	// worth, the window stays full. (A 503 before the consumer has granted
	// its window does not mean that yet.)
	full := false
	for i := 0; i < 1000 && !full; i++ {
		status, answer, _ := postOnce(t, url, "", fmt.Sprint("m", i))
		switch status {
		case http.StatusAccepted:
		case http.StatusServiceUnavailable:
			if full = metric(t, addr, "bridge_unconfirmed") >= float64(cfg.Window); !full {
				time.Sleep(10 * time.Millisecond) // until the consumer's grant arrives: the client's retry
			}
		default:
			t.Fatalf("POST %d: %d %v", i, status, answer)
		}
	}
	if !full {
		t.Fatal("the window never filled")
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: bridge\r\nContent-Length: 1000000\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the body: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	p.stop(t)
	stuck.release()
	c.stop(t)
}

// TestReadyzReasons: /readyz answers a short reason, never the carrier's
// error text, while an end is not ready: no peer yet; over tcp, a peer
// with another secret refuses the dialing end; over a broker, the peer's
// frames do not open at either end (and are counted as rejected, and
// nothing of them is delivered).
func TestReadyzReasons(t *testing.T) {
	t.Run("no peer", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Role, cfg.HTTPAddr = "consumer", adaptertest.FreeAddr(t)
		start(t, cfg, io.Discard)
		readyzSays(t, cfg.HTTPAddr, "carrier not connected")
	})
	t.Run("work pulling, no worker", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Mode, cfg.TCPListen = "work-pulling", "producer"
		producerCfg := cfg
		producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
		start(t, producerCfg, io.Discard)
		readyzSays(t, producerCfg.HTTPAddr, "no worker served")
		workerCfg := cfg
		workerCfg.Role, workerCfg.HTTPAddr, workerCfg.WorkerID = "consumer", adaptertest.FreeAddr(t), "w1"
		start(t, workerCfg, io.Discard)
		waitReady(t, producerCfg.HTTPAddr)
	})
	t.Run("tcp, another secret", func(t *testing.T) {
		cfg := baseConfig(t)
		consumerCfg := cfg
		consumerCfg.Role, consumerCfg.HTTPAddr, consumerCfg.Secret = "consumer", adaptertest.FreeAddr(t), secretA
		var out adaptertest.Buffer
		start(t, consumerCfg, &out)
		producerCfg := cfg
		producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr, producerCfg.Secret = "producer", "http", adaptertest.FreeAddr(t), secretB
		start(t, producerCfg, io.Discard)
		readyzSays(t, producerCfg.HTTPAddr, "refused by the peer: check BRIDGE_SECRET (the log says why)")
		readyzSays(t, consumerCfg.HTTPAddr, "carrier not connected")
	})
	t.Run("nats, another secret", func(t *testing.T) {
		srv, err := natscarrier.StartServer(context.Background(), natscarrier.ServerConfig{StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		cfg := baseConfig(t)
		cfg.Transport, cfg.NATSURL, cfg.Stream = "nats", srv.URL(), "readyz"
		cfg.ShutdownTimeout = time.Second
		consumerCfg := cfg
		consumerCfg.Role, consumerCfg.HTTPAddr, consumerCfg.Secret = "consumer", adaptertest.FreeAddr(t), secretA
		var out, consumerLog, producerLog adaptertest.Buffer
		c := startWith(t, consumerCfg, &out, &consumerLog)
		producerCfg := cfg
		producerCfg.Role, producerCfg.HTTPAddr, producerCfg.Secret = "producer", adaptertest.FreeAddr(t), secretB
		p := startWith(t, producerCfg, io.Discard, &producerLog, "one", "two")
		const reason = "peer's frames do not open: check BRIDGE_SECRET"
		readyzSays(t, consumerCfg.HTTPAddr, reason)
		readyzSays(t, producerCfg.HTTPAddr, reason)
		for range 20 { // a probe's polls: each answered, the detail logged at most once per 10 s
			readyzSays(t, consumerCfg.HTTPAddr, reason)
		}
		if n := strings.Count(consumerLog.String(), "not ready: "); n < 1 || n > 2 {
			t.Errorf("the consumer logged readyz's detail %d times in 20 polls; want it once per 10 s", n)
		}
		for end, addr := range map[string]string{"consumer": consumerCfg.HTTPAddr, "producer": producerCfg.HTTPAddr} {
			if n := metric(t, addr, `bridge_frames_rejected_total{reason="forged"`); n < 2 {
				t.Errorf("%s: bridge_frames_rejected_total{reason=forged} = %v", end, n)
			}
		}
		for end, log := range map[string]*adaptertest.Buffer{"consumer": &consumerLog, "producer": &producerLog} {
			if !strings.Contains(log.String(), "check that both ends have the same secret (BRIDGE_SECRET)") {
				t.Errorf("the %s's log does not say the peer's frames do not open:\n%s", end, log.String())
			}
			if got := regexp.MustCompile(`not ready: [^"]*`).FindString(log.String()); got != "not ready: "+reason {
				t.Errorf("the %s's log gives readyz's detail as %q", end, got)
			}
		}
		p.stop(t)
		c.stop(t)
		if out.String() != "" {
			t.Errorf("the consumer delivered %q from a producer with another secret", out.String())
		}
	})
}

// TestOpenStreamSeals: the links OpenStream opens (the demo's and the
// bench's) are sealed as `bridge run` seals them: with BRIDGE_SECRET, what
// crosses the broker is a sealed frame that shows nothing of the message;
// without, the plain frame.
func TestOpenStreamSeals(t *testing.T) {
	srv, err := natscarrier.StartServer(context.Background(), natscarrier.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := natsgo.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sealedCfg := baseConfig(t)
	sealedCfg.Transport, sealedCfg.NATSURL, sealedCfg.Secret = "nats", srv.URL(), secretA
	for name, cfg := range map[string]bridge.Config{"sealed": sealedCfg, "unsealed": sealedCfg.Unsealed()} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg.Stream = "open-stream-" + name
			if err := cfg.ValidateDemo(); err != nil {
				t.Fatal(err)
			}
			seen, err := nc.SubscribeSync("bridge." + cfg.Stream + ".data")
			if err != nil {
				t.Fatal(err)
			}
			defer seen.Unsubscribe()
			log := slog.New(slog.DiscardHandler)
			car, err := bridge.OpenCarrier(ctx, &cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			defer car.Close()
			producer, consumer, err := bridge.OpenStream(ctx, car, &cfg, cfg.ProducerSettings(log), log)
			if err != nil {
				t.Fatal(err)
			}
			defer consumer.Close()
			defer producer.Close()
			go producer.Run(ctx)
			go consumer.Run(ctx)
			if _, err := producer.Send(ctx, []byte("plain words")); err != nil {
				t.Fatal(err)
			}
			d, err := consumer.Receive(ctx)
			if err != nil || string(d.Message) != "plain words" {
				t.Fatalf("received %q, %v", d.Message, err)
			}
			frame, err := seen.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			shows := strings.Contains(string(frame.Data), "plain words")
			if sealed := frame.Data[0] == 0xBE; sealed != (name == "sealed") || shows == sealed {
				t.Errorf("the frame on the broker starts with %#x and shows the message: %v; want it sealed: %v", frame.Data[0], shows, name == "sealed")
			}
		})
	}
}

// TestHTTPConnectionCap: with BRIDGE_HTTP_MAX_CONNS connections open, the
// server takes no more until one closes; then the waiting one is served.
func TestHTTPConnectionCap(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Role, cfg.HTTPAddr, cfg.HTTPMaxConns = "consumer", adaptertest.FreeAddr(t), 1
	start(t, cfg, io.Discard)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a connection a request
	health := func() int {
		resp, err := client.Get("http://" + cfg.HTTPAddr + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; health() != http.StatusOK; i++ { // Run starts the server aside: no event to await
		if i == 1000 {
			t.Fatal("the HTTP server never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	holder, err := net.Dial("tcp", cfg.HTTPAddr) // takes the one connection, says nothing
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	fmt.Fprintf(holder, "GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n") // served, then kept alive
	if resp, err := http.ReadResponse(bufio.NewReader(holder), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the first connection: %v, %v", resp, err)
	}
	served := make(chan int, 1)
	go func() { served <- health() }()
	select {
	case status := <-served:
		t.Fatalf("a second connection was served (%d) while the first held the only one", status)
	case <-time.After(300 * time.Millisecond): // nothing to await: it must not be served
	}
	holder.Close()
	if status := <-served; status != http.StatusOK {
		t.Fatalf("the waiting connection, once the first closed: %d", status)
	}
}
