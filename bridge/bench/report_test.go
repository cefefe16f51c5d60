package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"image/png"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench"
)

// chromiumInstall is how a Debian machine gets the browser this test needs.
const chromiumInstall = "apt-get install -y chromium"

// chromiumPath finds Debian's chromium, or skips t (fails it under
// BRIDGE_TEST_REQUIRE_BROKERS=1) saying how to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	adaptertest.BrokerUnavailable(t, "chromium is not installed: the HTML report is checked in headless Chromium (%s)", chromiumInstall)
	return ""
}

// benchReport runs the bench in this process over tcp and the embedded NATS
// with a small count and returns the report's path and the JSON.
func benchReport(t *testing.T, sizes []int, count int) (string, []byte) {
	t.Helper()
	var b bench.Config
	cfg, err := bridge.LoadConfig(&b)
	if err != nil {
		t.Fatal(err)
	}
	b.Transports = []string{"tcp", "nats"}
	b.Size, b.Count, b.Format = sizes, count, "json"
	b.Report = filepath.Join(t.TempDir(), "report.html")
	if err := b.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	env := bridge.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := bench.Run(ctx, cfg, b, env); err != nil {
		t.Fatal(err)
	}
	return b.Report, stdout.Bytes()
}

// blackhole is a proxy that takes connections and answers none: every
// request the browser tries to make over the network ends up here, counted.
type blackhole struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup

	mu    sync.Mutex
	asked []string // the first line of each request: what was wanted
}

func startBlackhole(t *testing.T) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.wg.Go(func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				b.mu.Lock()
				b.asked = append(b.asked, strings.TrimSpace(line))
				b.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

// The chart colours of raw and reliable, as the report draws them.
var (
	rawColor      = [3]uint8{0x8a, 0x8f, 0x98}
	reliableColor = [3]uint8{0x1f, 0x6f, 0xb4}
)

// TestBenchReportInChromium opens the HTML report of a real bench in
// headless Chromium, with every request the browser makes sent to a proxy
// that counts them, and checks that the charts render: the chart elements
// exist with a size, a screenshot of them shows both modes' colours, the
// page logged no error (a Content Security Policy violation would be one),
// and nothing was fetched but the file itself.
func TestBenchReportInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	sizes := []int{128, 4096}
	report, _ := benchReport(t, sizes, 1000)
	proxy := startBlackhole(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Chromium's own services would call Google on their own: the
		// network clock off, sign-in and the component updater pointed at
		// a closed port. A connection to the proxy is then the page's.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,NetworkTimeServiceQuerying"),
		chromedp.Flag("gaia-url", "http://127.0.0.1:9"),
		chromedp.Flag("component-updater", "url-source=http://127.0.0.1:9/"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.ProxyServer("http://"+proxy.ln.Addr().String()),
		chromedp.Flag("proxy-bypass-list", "<-loopback>"), // loopback goes to the proxy too
		chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	var mu sync.Mutex
	var requests, problems []string
	err := chromedp.Listen(browser, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, e.Entry.Text)
			}
		case *cdpruntime.EventExceptionThrown:
			problems = append(problems, e.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

	url := "file://" + report
	if err := chromedp.Do(browser, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("svg.chart.latency"))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	counts, err := chromedp.Run(browser, chromedp.Evaluate[map[string]int](`(() => {
		const sized = sel => [...document.querySelectorAll(sel)].filter(e => {
			const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 }).length;
		return {
			throughput: sized("svg.chart.throughput"),
			latency: sized("svg.chart.latency"),
			bars: sized("rect.bar"),
			rawBars: sized("rect.bar.raw"),
			reliableBars: sized("rect.bar.reliable"),
			spreads: sized("g.spread"),
			boxes: sized("rect.box"),
			tableRows: document.querySelectorAll("#figures tr").length,
			scripts: document.querySelectorAll("script").length,
		};
	})()`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	shot, err := chromedp.Run(browser, chromedp.Screenshot(chromedp.CSS("#charts")))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	mu.Lock()
	pageRequests, pageProblems := slices.Clone(requests), slices.Clone(problems)
	mu.Unlock()
	reportConns := proxy.conns.Load()
	// The proxy must see what the browser fetches, or the count above
	// proves nothing: a page on the network goes there (and fails).
	chromedp.Do(browser, chromedp.Navigate("http://bridge-bench-probe.invalid/"))
	if proxy.conns.Load() == reportConns {
		t.Error("a page on the network did not reach the proxy: the test cannot see the browser's requests")
	}
	if err := chromedp.Cancel(browser); err != nil {
		t.Logf("closing chromium: %v", err)
	}

	runs := 2 * len(sizes) * 2 // transports × sizes × modes
	want := map[string]int{
		"throughput": len(sizes), "latency": len(sizes),
		"bars": runs, "rawBars": runs / 2, "reliableBars": runs / 2,
		"spreads": runs, "boxes": runs, "tableRows": runs + 1, "scripts": 0,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: %d rendered, want %d (all: %v)", k, counts[k], v, counts)
		}
	}

	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG (%d bytes): %v", len(shot), err)
	}
	bounds := img.Bounds()
	var raw, reliable int
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
			switch c {
			case rawColor:
				raw++
			case reliableColor:
				reliable++
			}
		}
	}
	if bounds.Dx() < 400 || bounds.Dy() < 300 || raw < 200 || reliable < 200 {
		t.Errorf("screenshot %dx%d with %d raw-coloured and %d reliable-coloured pixels; want the charts drawn", bounds.Dx(), bounds.Dy(), raw, reliable)
	}
	if dir := os.Getenv("BRIDGE_TEST_BENCH_SHOT_DIR"); dir != "" { // to look at it
		os.WriteFile(filepath.Join(dir, "bench-report-test.png"), shot, 0o644)
	}

	for _, u := range pageRequests {
		if u != url {
			t.Errorf("the report made a request for %s; it must need nothing but itself", u)
		}
	}
	if len(pageRequests) == 0 {
		t.Error("no request seen at all, not even the report's: the network events are not observed")
	}
	if n := reportConns; n != 0 {
		proxy.mu.Lock()
		t.Errorf("chromium opened %d connections while showing the report, asking %q; want none", n, proxy.asked)
		proxy.mu.Unlock()
	}
	for _, p := range pageProblems {
		t.Errorf("the page logged: %s", p)
	}
}
