// Command bridge runs one end of a reliable delivery stream over TCP, NATS,
// RabbitMQ or Kafka, configured by BRIDGE_* environment variables.
//
//	bridge [run]   run the end BRIDGE_ROLE names (the default command)
//	bridge demo    run both ends in this process and report what arrived
//	bridge bench   compare raw clients with reliable delivery over every carrier
//	bridge env     list every BRIDGE_ variable, its default and meaning
//	bridge check   check the configuration of `bridge run`, and exit
//	bridge dlq list    print the stream's dead letters (BRIDGE_DLQ)
//	bridge dlq replay  send them back through the stream, removing each once confirmed
//
// Exit status: 0 done, 1 failed, 2 bad configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/bridge/bench"
)

const usage = `usage: bridge [command]

commands:
  run    run the end of the stream BRIDGE_ROLE names (default)
  demo   run both ends here, on the embedded default carrier, and report
  bench  run one workload over each carrier of BRIDGE_BENCH_TRANSPORTS, raw
         (the carrier's own client) and reliable (the protocol), and compare
  env    list every BRIDGE_ variable with its type, default and meaning
  check  check the configuration of 'bridge run' and exit
  dlq list    print the dead letters of BRIDGE_STREAM in BRIDGE_DLQ, oldest
              first, a JSON line each, and a summary on stderr
  dlq replay  send them back through the stream (to BRIDGE_DLQ_REPLAY_URL,
              a producer's POST /v1/messages, or else as the stream's
              producer, which must be stopped) and remove each once the
              consumer confirmed it
  help   show this

Configuration is by environment variables only; 'bridge env' lists them.
Exit status: 0 done, 1 failed, 2 bad configuration.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// dlqCommands are the subcommands of `bridge dlq`.
var dlqCommands = []string{"list", "replay"}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd = args[0]
	}
	sub := ""
	if cmd == "dlq" {
		if len(args) != 2 || !slices.Contains(dlqCommands, args[1]) {
			fmt.Fprintf(stderr, "bridge: dlq takes one of: %s\n\n%s", strings.Join(dlqCommands, ", "), usage)
			return 2
		}
		sub, args = args[1], args[:1]
	}
	if len(args) > 1 {
		fmt.Fprintf(stderr, "bridge: %s takes no arguments (configuration is by BRIDGE_* variables)\n\n%s", cmd, usage)
		return 2
	}
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "env":
		if err := bridge.PrintEnv(stdout, &bench.Config{}); err != nil {
			fmt.Fprintln(stderr, "bridge:", err)
			return 1
		}
		return 0
	case "run", "demo", "check", "bench", "dlq":
	default:
		fmt.Fprintf(stderr, "bridge: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	// The bench's variables are read whatever the command, so that none of
	// them is taken for a typo.
	var benchCfg bench.Config
	cfg, err := bridge.LoadConfig(&benchCfg)
	if err == nil {
		switch cmd {
		case "run", "check":
			err = cfg.ValidateRun()
		case "demo":
			err = cfg.ValidateDemo()
		case "bench":
			err = benchCfg.Validate(&cfg)
		case "dlq":
			err = cfg.ValidateDLQ(sub == "replay")
		}
	}
	if err != nil {
		return configErrors(stderr, err)
	}
	if cmd == "check" {
		fmt.Fprintf(stdout, "configuration OK: %s of stream %q over %s\n", cfg.Role, cfg.Stream, cfg.Transport)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env := bridge.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Log: bridge.NewLogger(&cfg, stderr)}
	switch cmd {
	case "run":
		err = bridge.Run(ctx, cfg, env)
	case "demo":
		err = bridge.Demo(ctx, cfg, env)
	case "bench":
		err = bench.Run(ctx, cfg, benchCfg, env)
	case "dlq":
		if sub == "list" {
			err = bridge.ListDLQ(ctx, cfg, env)
		} else {
			err = bridge.ReplayDLQ(ctx, cfg, env)
		}
	}
	var ce *bridge.ConfigError
	switch {
	case errors.As(err, &ce):
		return configErrors(stderr, err)
	case err != nil:
		env.Log.Error("bridge failed", "command", strings.TrimSpace(cmd+" "+sub), "err", err)
		return 1
	}
	return 0
}

// configErrors prints every configuration problem, one a line, and returns
// the exit status for them.
func configErrors(w io.Writer, err error) int {
	var joined interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintln(w, "bridge: configuration:", e)
	}
	return 2
}
