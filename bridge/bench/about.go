package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-mq/bridge/bridge/bench/report"
)

func describeBench(b *Config) report.About {
	rate := "as fast as possible"
	if b.Rate > 0 {
		rate = fmt.Sprintf("at %s msgs/s", strconv.FormatFloat(b.Rate, 'f', -1, 64))
	}
	count := fmt.Sprintf("%d messages per run", b.Count)
	if b.MaxBytes > 0 {
		count += fmt.Sprintf(" (at most %s)", bytesText(b.MaxBytes))
	}
	if b.Scenario == scenarioWorkPulling {
		return report.About{Date: time.Now().Format("2006-01-02"), Machine: describeMachine(), Workload: fmt.Sprintf(
			"work pulling: %d messages of %s per pass shared by %s workers, each spending %s on every message, window (prefetch) %d per worker; then %s",
			b.Count, report.SizeText(b.Size[0]), intsText(b.Workers), b.SinkCost, b.window(), killText(b))}
	}
	workload := fmt.Sprintf("%s, %s, in %d rounds, window %d", count, rate, b.Rounds, b.window())
	if b.Durable {
		workload += ", also with the durable queue"
	}
	if b.Sealed {
		workload += ", also with sealed frames"
	}
	if b.Headers {
		workload += ", also with three headers of 32 bytes"
	}
	if b.TraceSample > 0 {
		workload += fmt.Sprintf(", also traced, %s of messages sampled", strconv.FormatFloat(b.TraceSample*100, 'f', -1, 64)+"%")
	}
	return report.About{Date: time.Now().Format("2006-01-02"), Machine: describeMachine(), Workload: workload}
}

// bytesText is a byte count as people say it: 1 GiB, 500 MB.
func bytesText(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// describeMachine is the OS, the CPU and its cores, the memory and Go's
// version, as far as this system tells.
func describeMachine() string {
	parts := []string{runtime.GOOS + "/" + runtime.GOARCH}
	cpu := fmt.Sprintf("%d cores", runtime.NumCPU())
	if model := procField("/proc/cpuinfo", "model name"); model != "" {
		cpu += " (" + strings.Join(strings.Fields(model), " ") + ")"
	}
	parts = append(parts, cpu)
	if mem := procField("/proc/meminfo", "MemTotal"); mem != "" {
		if kb, err := strconv.Atoi(strings.TrimSuffix(mem, " kB")); err == nil {
			parts = append(parts, fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20)))
		}
	}
	return strings.Join(append(parts, runtime.Version()), ", ")
}

// procField is the value of the first "name: value" line of a /proc file,
// "" where there is none.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == name {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

func intsText(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// killText says what the kill pass does.
func killText(b *Config) string {
	n, workers, killAt, ok := workPlan{count: b.Count, workers: b.Workers}.killPass()
	if !ok {
		return "no kill pass (it needs 2 workers or more)"
	}
	return fmt.Sprintf("%d messages over %d workers, worker 0 killed once %d are in", n, workers, killAt)
}
