package main_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The work-pulling part of the chaos suite: a work-pulling producer process
// reads numbered lines from stdin and three worker processes share them;
// at random moments from the seed a worker is SIGKILLed mid-stream and a
// new one (a new worker id) joins. The faults of the point-to-point rigs
// that sit between two bridges (proxy cut, latency, broker restart) are not
// injected here: each worker has a link of its own, which the rigs' single
// proxy does not front.

// workWindow is the window each worker grants: it bounds what a killed
// worker held unconfirmed, which the producer hands to another.
const workWindow = 100

// workPlan is the work-pulling run of a chaos form: lines, worker kills,
// and lines the producer reads per 10 ms.
func (p chaosPlan) work() (lines, kills, pace int) {
	if p.form == "long" {
		return 100_000, 10, 50
	}
	return 20_000, 2, 200
}

// workResult is what one carrier's work-pulling run showed.
type workResult struct {
	carrier     string
	lines       int
	kills       int
	lifetimes   int
	elapsed     time.Duration
	lost        int // read by the producer, written by no worker
	duplicated  int // written more than once (a killed worker wrote it, another got it again)
	reordered   int // a worker went back to a line no killed worker could have held
	unexplained int // written twice, though no killed worker wrote it
}

// workLife is what one worker lifetime wrote, and whether it was killed.
type workLife struct {
	id     string
	lines  []int
	killed bool
	bound  int // for a killed worker, the highest line it can have held
}

// checkWork checks what the workers wrote. Each lifetime writes its lines
// in ascending order, except where it goes back to take lines a killed
// worker held: ones the killed worker wrote (then they are duplicates), or
// ones it had unconfirmed, which lie between its first line and its bound
// (or, where no bound was taken, a few windows past its last line).
func checkWork(carrier string, n int, lives []workLife) workResult {
	res := workResult{carrier: carrier, lines: n, lifetimes: len(lives)}
	count := make([]int, n+1)
	byKilled := make([]bool, n+1)
	type span struct{ lo, hi int }
	var held []span
	for _, l := range lives {
		if !l.killed {
			continue
		}
		res.kills++
		if len(l.lines) > 0 {
			held = append(held, span{slices.Min(l.lines), max(slices.Max(l.lines)+4*workWindow, l.bound)})
		}
		for _, v := range l.lines {
			byKilled[v] = true
		}
	}
	heldByKilled := func(v int) bool {
		if byKilled[v] {
			return true
		}
		for _, s := range held {
			if v > s.lo && v <= s.hi {
				return true
			}
		}
		return false
	}
	for _, l := range lives {
		prev := 0
		for _, v := range l.lines {
			count[v]++
			if v < prev && !heldByKilled(v) {
				res.reordered++
			}
			prev = v
		}
	}
	for v := 1; v <= n; v++ {
		switch {
		case count[v] == 0:
			res.lost++
		case count[v] > 1:
			res.duplicated += count[v] - 1
			if !byKilled[v] {
				res.unexplained++
			}
		}
	}
	return res
}

func (r workResult) check(t *testing.T) {
	t.Helper()
	if r.lost != 0 || r.reordered != 0 || r.unexplained != 0 {
		t.Errorf("%s (work pulling): %d lost, %d reordered, %d repeated though no killed worker wrote them", r.carrier, r.lost, r.reordered, r.unexplained)
	}
}

func (r workResult) summary() string {
	return fmt.Sprintf("%s (work pulling): %d lines, %d worker kills, %d worker lifetimes; lost %d, duplicated %d, reordered %d, in %.1f s",
		r.carrier, r.lines, r.kills, r.lifetimes, r.lost, r.duplicated, r.reordered, r.elapsed.Seconds())
}

// runWorkChaos runs one carrier's work-pulling chaos: three workers, kills
// SIGKILLs of a random live worker, each followed by a new worker.
func runWorkChaos(t *testing.T, tr transport, plan chaosPlan, seed uint64) workResult {
	n, kills, pace := plan.work()
	rng := rand.New(rand.NewPCG(seed, 18))
	vars := append(tr.vars(t), "BRIDGE_MODE=work-pulling", "BRIDGE_WORKER_TIMEOUT=1s",
		"BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_WINDOW="+strconv.Itoa(workWindow), "BRIDGE_TCP_LISTEN=producer")
	dir := t.TempDir()
	gate := make(chan struct{})
	began := time.Now()
	producer := startProc(t, pacedAt(n, pace, gate), nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=stdin", "BRIDGE_LOG_LEVEL=info")...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("producer:\n%s", lastLines(producer.stderr.String(), 40))
		}
	})
	// The producer first: with NATS it embeds the server, which a killed
	// worker must not take with it.
	waitForLog(t, producer, "work-pulling producer started")
	type worker struct {
		life workLife
		path string
		p    *proc
	}
	var all []*worker
	var ids []string
	start := func() *worker {
		id := "w" + strconv.Itoa(len(all)+1)
		path := filepath.Join(dir, id)
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := &worker{life: workLife{id: id}, path: path, p: startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer", "BRIDGE_WORKER_ID="+id)...)}
		out.Close()
		all = append(all, w)
		ids = append(ids, id)
		return w
	}
	for range 3 {
		w := start()
		waitForLog(t, producer, "worker_id="+w.life.id+" epoch=")
	}
	close(gate)
	for k := range kills {
		at := n * (k + 1) / (kills + 1)
		waitWritten(t, dir, at, producer)
		// The victim is one that has written: the kill is then mid-stream
		// for it. A replacement just started may not have been served yet.
		var alive, writing []*worker
		for _, w := range all {
			if !w.life.killed {
				alive = append(alive, w)
				if data, _ := os.ReadFile(w.path); bytes.IndexByte(data, '\n') >= 0 {
					writing = append(writing, w)
				}
			}
		}
		if len(writing) == 0 {
			writing = alive
		}
		victim := writing[rng.IntN(len(writing))]
		waitForLines(t, victim.path, 1, victim.p)
		kill(victim.p)
		victim.life.killed = true
		// Every line the producer had handed out by now is written or
		// held by a worker started so far, each holding at most its
		// window. The lines a slow worker holds can lie further past its
		// last written line than a few windows: over Kafka, 20 ms of
		// latency is 400 lines of the others' progress.
		victim.life.bound = linesWritten(dir) + len(all)*workWindow
		start()
	}
	producer.wait(t, "producer", time.Duration(n/pace)*10*time.Millisecond+time.Minute)
	for _, w := range all {
		// A kill the producer never noticed would prove nothing.
		if w.life.killed && !strings.Contains(producer.stderr.String(), "worker_id="+w.life.id+` why="silent`) {
			t.Errorf("the producer never took the killed worker %s for dead", w.life.id)
		}
	}
	cleanupWorkerStreams(t, tr.name, vars, ids)
	var lives []workLife
	for _, w := range all {
		if !w.life.killed {
			w.p.terminate(t, w.life.id)
		}
		w.life.lines = readLines(t, w.path)
		lives = append(lives, w.life)
	}
	res := checkWork(tr.name, n, lives)
	res.elapsed = time.Since(began)
	return res
}

// waitWritten polls the workers' files until they hold at least n lines in
// all: another process writes them, and nothing signals that.
func waitWritten(t *testing.T, dir string, n int, producer *proc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if linesWritten(dir) >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the workers never wrote %d lines\n%s", n, lastLines(producer.stderr.String(), 40))
}

// linesWritten counts the lines in the workers' files, repeats included.
func linesWritten(dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "w*"))
	total := 0
	for _, f := range files {
		data, _ := os.ReadFile(f)
		total += bytes.Count(data, []byte{'\n'})
	}
	return total
}

// pacedAt returns the lines 1 to n, per lines every 10 ms once gate is
// closed, so that workers can die while the stream flows.
func pacedAt(n, per int, gate <-chan struct{}) io.Reader {
	r, w := io.Pipe()
	go func() {
		<-gate
		for i := 1; i <= n; i += per {
			var b strings.Builder
			for j := i; j < i+per && j <= n; j++ {
				b.WriteString(strconv.Itoa(j))
				b.WriteByte('\n')
			}
			if _, err := io.WriteString(w, b.String()); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.Close()
	}()
	return r
}

// workReport is the work-pulling section of the markdown report.
func workReport(p chaosPlan, results []workResult) string {
	if len(results) == 0 {
		return ""
	}
	n, kills, pace := p.work()
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Work pulling: worker kill\n\nEach carrier streamed %d numbered lines (%d every 10 ms, from stdin) from a work-pulling producer process to three worker processes, while %d times a live worker, drawn from the seed, was SIGKILLed mid-stream and a new worker (a new id) joined. Each worker grants a window of %d.\n\n", n, pace, kills, workWindow)
	b.WriteString("| carrier | lines | worker kills | worker lifetimes | lost | duplicated | reordered | time |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %.0f s |\n", r.carrier, r.lines, r.kills, r.lifetimes, r.lost, r.duplicated, r.reordered, r.elapsed.Seconds())
	}
	b.WriteString(`
What is checked: the producer exits 0 (every line confirmed by a worker) and every line is written by a worker (lost: 0); each worker writes its lines in ascending order, going back only to lines a killed worker held: ones it wrote, or ones it had unconfirmed (reordered: 0); a line is written twice only if a killed worker wrote it; duplicated counts those repeats.
`)
	return b.String()
}

// TestChaosWorkChecks: the work-pulling checks catch what they are meant to.
func TestChaosWorkChecks(t *testing.T) {
	cases := []struct {
		name                              string
		lives                             []workLife
		lost, dup, reordered, unexplained int
	}{
		{"clean", []workLife{{lines: []int{1, 3, 5}}, {lines: []int{2, 4, 6}}}, 0, 0, 0, 0},
		{"a killed worker's lines taken again", []workLife{{lines: []int{1, 3}, killed: true}, {lines: []int{2, 4, 3, 5, 6}}}, 0, 1, 0, 0},
		{"a line lost", []workLife{{lines: []int{1, 3}}, {lines: []int{2, 4, 6}}}, 1, 0, 0, 0},
		{"a repeat no kill explains", []workLife{{lines: []int{1, 2, 3}}, {lines: []int{3, 4, 5, 6}}}, 0, 1, 0, 1},
		{"going back with no kill", []workLife{{lines: []int{1, 3, 2}}, {lines: []int{4, 5, 6}}}, 0, 0, 1, 0},
	}
	for _, c := range cases {
		r := checkWork("x", 6, c.lives)
		if r.lost != c.lost || r.duplicated != c.dup || r.reordered != c.reordered || r.unexplained != c.unexplained {
			t.Errorf("%s: lost %d dup %d reordered %d unexplained %d; want %d %d %d %d", c.name,
				r.lost, r.duplicated, r.reordered, r.unexplained, c.lost, c.dup, c.reordered, c.unexplained)
		}
	}
	// A killed worker's bound: what it held can lie further past its last
	// line than a few windows, and no further than its bound.
	slow := func(bound int) int {
		return checkWork("x", 601, []workLife{{lines: []int{1}, killed: true, bound: bound}, {lines: []int{600, 500, 601}}}).reordered
	}
	if got := slow(600); got != 0 {
		t.Errorf("going back within a killed worker's bound: %d reordered, want 0", got)
	}
	if got := slow(450); got != 1 {
		t.Errorf("going back past a killed worker's bound: %d reordered, want 1", got)
	}
}
