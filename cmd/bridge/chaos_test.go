package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fault-injection suite runs the bridge binary as a producer process
// and a consumer process over each carrier, streams numbered messages
// through them, and injects faults at random moments from a seed: SIGKILL
// of either process (the producer keeps a durable queue), connections cut
// and latency added by a toxiproxy between the bridges and their broker (or
// between the two bridges, for tcp), and a broker restart where the machine
// allows one. Then it checks every message.
//
// By default it runs its short form (10,000 messages and 5 faults per
// carrier: one of each kind the carrier allows). BRIDGE_TEST_CHAOS=long runs the long form (100,000 messages, 20
// faults per carrier: `make chaos`); BRIDGE_TEST_CHAOS_SEED replays a run;
// BRIDGE_TEST_CHAOS_REPORT writes the markdown report there. Then the
// work-pulling part (chaos_work_test.go) kills workers over every carrier:
// 2 kills in 20,000 lines per carrier in the short form, 10 in 100,000 in
// the long.

type chaosPlan struct {
	form     string
	messages int
	faults   int
	seed     uint64
}

func chaosPlanFromEnv(t *testing.T) chaosPlan {
	p := chaosPlan{form: "short", messages: 10_000, faults: 5, seed: uint64(time.Now().UnixNano())}
	if os.Getenv("BRIDGE_TEST_CHAOS") == "long" {
		p = chaosPlan{form: "long", messages: 100_000, faults: 20, seed: p.seed}
	}
	if s := os.Getenv("BRIDGE_TEST_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BRIDGE_TEST_CHAOS_SEED=%q: %v", s, err)
		}
		p.seed = seed
	}
	return p
}

func TestChaos(t *testing.T) {
	plan := chaosPlanFromEnv(t)
	t.Logf("chaos %s form, seed %d (BRIDGE_TEST_CHAOS_SEED=%d replays it)", plan.form, plan.seed, plan.seed)
	start := time.Now()
	var results []chaosResult
	for i, r := range rigs {
		t.Run(r.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			rg := r.build(t)
			run := newChaosRun(t, rg, plan.messages, plan.seed+uint64(i))
			began := time.Now()
			run.run(ctx, plan.faults)
			res := run.result(time.Since(began))
			results = append(results, res)
			t.Logf("%s", res.summary())
			res.check(t)
		})
	}
	var work []workResult
	for i, tr := range transports {
		t.Run("work-pulling/"+tr.name, func(t *testing.T) {
			res := runWorkChaos(t, tr, plan, plan.seed+uint64(100+i))
			work = append(work, res)
			t.Logf("%s", res.summary())
			res.check(t)
		})
	}
	if path := os.Getenv("BRIDGE_TEST_CHAOS_REPORT"); path != "" && len(results) > 0 {
		report := chaosReport(plan, results, time.Since(start)) + workReport(plan, work)
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// chaosResult is what one carrier's run showed.
type chaosResult struct {
	carrier     string
	brokerFault string
	messages    int
	lifetimes   int
	elapsed     time.Duration
	faults      map[faultKind][]time.Duration // recovery times, by kind
	lost        int                           // accepted, never written
	duplicated  int                           // written more than once
	reordered   int                           // a message written after a later one, in one consumer lifetime, with no crash to explain it
	unexplained int                           // repeats within a consumer lifetime that no producer crash explains
}

// result checks what the consumer wrote. Each consumer lifetime must write
// messages in order, each the next of the one before, except where it goes
// back to repeat: allowed only after a producer crash (the restarted
// producer resends what it had not had confirmed, and the client resends a
// request the crash broke: up to two repeats each), in the lifetime current
// at the crash or in a later one that starts over from before it (over a
// broker, a restarted consumer reads the old producer's frames again, then
// the new one's resends of them). A new lifetime may
// start at any message already written, never past the next one. A jump
// forward is a reordering if the skipped messages come later, a loss if
// not.
func (c *chaosRun) result(elapsed time.Duration) chaosResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := chaosResult{carrier: c.rig.name, brokerFault: c.rig.brokerFaultIs, messages: c.n, lifetimes: len(c.lives),
		elapsed: elapsed, faults: map[faultKind][]time.Duration{}}
	for _, f := range c.faults {
		res.faults[f.kind] = append(res.faults[f.kind], f.recovery)
	}
	count := make([]int, c.n+1)
	highest := 0
	for life, ids := range c.lives {
		allowed := 0
		for _, k := range c.kills {
			if k.life == life || k.life < life && len(ids) > 0 && ids[0] <= k.written {
				allowed += 2
			}
		}
		prev := highest // a new lifetime may go back, not beyond the next
		for j, id := range ids {
			count[id]++
			switch {
			case id == prev+1:
			case id <= prev && j == 0:
				// a new lifetime starting over: the at-least-once of a consumer crash
			case id <= prev:
				if allowed == 0 {
					res.unexplained++
				} else {
					allowed--
				}
			default:
				res.reordered++
			}
			prev = id
			highest = max(highest, id)
		}
	}
	for id := 1; id <= c.n; id++ {
		switch {
		case count[id] == 0:
			res.lost++
		case count[id] > 1:
			res.duplicated += count[id] - 1
		}
	}
	return res
}

func (r chaosResult) check(t *testing.T) {
	t.Helper()
	if r.lost != 0 || r.reordered != 0 || r.unexplained != 0 {
		t.Errorf("%s: %d lost, %d reordered, %d repeated without a crash to explain them", r.carrier, r.lost, r.reordered, r.unexplained)
	}
}

func (r chaosResult) faultList() string {
	var parts []string
	for _, k := range allFaults {
		if n := len(r.faults[k]); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}

func (r chaosResult) summary() string {
	return fmt.Sprintf("%s: %d messages, %d consumer lifetimes, faults: %s; lost %d, duplicated %d, reordered %d, in %.1f s",
		r.carrier, r.messages, r.lifetimes, r.faultList(), r.lost, r.duplicated, r.reordered, r.elapsed.Seconds())
}

// chaosReport is the markdown report of a run.
func chaosReport(p chaosPlan, results []chaosResult, elapsed time.Duration) string {
	var b strings.Builder
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	fmt.Fprintf(&b, "# Reliability report\n\n")
	fmt.Fprintf(&b, "The fault-injection suite (`cmd/bridge/chaos_*_test.go`, %s form), run on %s, seed %d, commit %s, in %.0f s on the 2-core development machine.\n\n",
		p.form, time.Now().Format("2006-01-02"), p.seed, strings.TrimSpace(string(commit)), elapsed.Seconds())
	fmt.Fprintf(&b, "Each carrier streamed %d numbered messages from a producer process (the HTTP source with the durable queue: a 202 answer means the message is stored and synced) to a consumer process (the stdout sink, a file per lifetime), while %d faults were injected at random moments drawn from the seed. Replay with `BRIDGE_TEST_CHAOS_SEED=%d make chaos`.\n\n", p.messages, p.faults, p.seed)
	b.WriteString("| carrier | messages | faults injected | consumer lifetimes | lost | duplicated | reordered | time |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %d | %d | %.0f s |\n", r.carrier, r.messages, r.faultList(), r.lifetimes, r.lost, r.duplicated, r.reordered, r.elapsed.Seconds())
	}
	b.WriteString("\nTime to recover: from the end of a fault to the next message the consumer wrote for the first time (p50 / max).\n\n")
	b.WriteString("| carrier |")
	for _, k := range allFaults {
		fmt.Fprintf(&b, " %s |", k)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(allFaults)) + "\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s |", r.carrier)
		for _, k := range allFaults {
			ds := slices.Clone(r.faults[k])
			if len(ds) == 0 {
				b.WriteString(" - |")
				continue
			}
			slices.Sort(ds)
			fmt.Fprintf(&b, " %s / %s |", roundMS(ds[len(ds)/2]), roundMS(ds[len(ds)-1]))
		}
		b.WriteString("\n")
	}
	b.WriteString(`
The faults:

- **kill-consumer**: SIGKILL of the consumer process, then a new one. Allowed: the new lifetime starts again at a message already written (at least once).
- **kill-producer**: SIGKILL of the producer process, then a new one on the same durable queue; the client sends again the request the kill broke. Allowed: repeats of what the dead producer had not had confirmed, and of the broken request.
- **cut**: the toxiproxy between the bridges and the broker (for tcp, between the two bridges) drops every connection and refuses new ones for 0.2 to 1 s.
- **latency**: the proxy delays every byte 40 ± 20 ms, both ways, for 0.5 to 2 s.
- **broker**: where the machine allows it:
`)
	for _, r := range results {
		if r.brokerFault != "" {
			fmt.Fprintf(&b, "  - %s: %s.\n", r.carrier, r.brokerFault)
		}
	}
	b.WriteString(`
What is checked: every message the producer accepted (answered 202) is written by the consumer (lost: 0); within each consumer lifetime messages come in order, each the next of the one before, going back only to repeat what a crash allows (reordered: 0, and no repeat without a crash); duplicated counts every repeat.
`)
	return b.String()
}

func roundMS(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// TestChaosChecks: the checks catch what they are meant to.
func TestChaosChecks(t *testing.T) {
	check := func(lives [][]int, kills []producerKill) chaosResult {
		c := &chaosRun{rig: &rig{name: "x"}, n: 6, lives: lives, kills: kills}
		return c.result(0)
	}
	cases := []struct {
		name                              string
		lives                             [][]int
		kills                             []producerKill
		lost, dup, reordered, unexplained int
	}{
		{"clean", [][]int{{1, 2, 3, 4, 5, 6}}, nil, 0, 0, 0, 0},
		{"consumer restart repeats", [][]int{{1, 2, 3}, {2, 3, 4, 5, 6}}, nil, 0, 2, 0, 0},
		{"producer restart repeats", [][]int{{1, 2, 3, 2, 3, 4, 5, 6}}, []producerKill{{life: 0}}, 0, 2, 0, 0},
		{"a later lifetime reading a producer restart again", [][]int{{1, 2, 3, 4}, {2, 3, 4, 3, 4, 5, 6}}, []producerKill{{life: 0, written: 3}}, 0, 5, 0, 0},
		{"a later lifetime past a producer restart", [][]int{{1, 2, 3, 4}, {4, 5, 4, 5, 6}}, []producerKill{{life: 0, written: 3}}, 0, 3, 0, 1},
		{"repeat with no crash", [][]int{{1, 2, 3, 2, 3, 4, 5, 6}}, nil, 0, 2, 0, 1},
		{"a message lost", [][]int{{1, 2, 4, 5, 6}}, nil, 1, 0, 1, 0},
		{"a message late", [][]int{{1, 2, 4, 3, 5, 6}}, nil, 0, 0, 2, 1},
		{"a new lifetime skipping ahead", [][]int{{1, 2}, {4, 5, 6}}, nil, 1, 0, 1, 0},
	}
	for _, c := range cases {
		r := check(c.lives, c.kills)
		if r.lost != c.lost || r.duplicated != c.dup || r.reordered != c.reordered || r.unexplained != c.unexplained {
			t.Errorf("%s: lost %d dup %d reordered %d unexplained %d; want %d %d %d %d", c.name,
				r.lost, r.duplicated, r.reordered, r.unexplained, c.lost, c.dup, c.reordered, c.unexplained)
		}
	}
}
