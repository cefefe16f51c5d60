// Command kfake serves kfake, franz-go's in-process Kafka test broker, on
// loopback, so that `make bench` can run `bridge bench` over Kafka on a
// machine with no Kafka. It lives under testdata: kfake is for tests and
// never enters the bridge binary.
//
//	go run ./cmd/bridge/testdata/kfake [-port N] [command [arg...]]
//
// With a command, it starts the broker, runs the command with
// BRIDGE_KAFKA_BROKERS set to the broker's address (and
// BRIDGE_BENCH_KAFKA_LABEL=kfake unless it is set: the bench labels kfake a
// test broker in every output), stops the broker when the command ends, and
// exits with the command's status. When BRIDGE_KAFKA_BROKERS is set
// already, a real Kafka is there: it runs the command alone. Without a
// command, it prints the address and serves until interrupted.
//
// kfake does not replicate, persist or throttle: figures measured on it
// say nothing about Kafka's speed, only how the protocol compares with raw
// kafka-go on the same broker.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "the broker's port on 127.0.0.1 (0: any free port)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: kfake [-port N] [command [arg...]]")
		flag.PrintDefaults()
	}
	flag.Parse()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	if flag.NArg() > 0 && os.Getenv("BRIDGE_KAFKA_BROKERS") != "" {
		fmt.Fprintln(os.Stderr, "kfake: BRIDGE_KAFKA_BROKERS is set; running without kfake:", strings.Join(flag.Args(), " "))
		os.Exit(runWith(nil, "", signals))
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	addr := strings.Join(cluster.ListenAddrs(), ",")

	if flag.NArg() == 0 {
		fmt.Printf("kfake (a test broker) listening on %s; interrupt to stop\n", addr)
		<-signals
		cluster.Close()
		return
	}
	fmt.Fprintf(os.Stderr, "kfake (a test broker) listening on %s for: %s\n", addr, strings.Join(flag.Args(), " "))
	os.Exit(runWith(cluster, addr, signals))
}

// runWith runs the command with the broker's address (none: the
// environment's), passes it the signals this process gets, and stops the
// broker once it ends.
func runWith(cluster *kfake.Cluster, addr string, signals <-chan os.Signal) int {
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	if cluster != nil {
		defer cluster.Close()
		cmd.Env = append(cmd.Env, "BRIDGE_KAFKA_BROKERS="+addr)
		if os.Getenv("BRIDGE_BENCH_KAFKA_LABEL") == "" {
			cmd.Env = append(cmd.Env, "BRIDGE_BENCH_KAFKA_LABEL=kfake")
		}
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			cmd.Process.Signal(sig)
		case err := <-done:
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit):
				return max(exit.ExitCode(), 1) // -1: killed by a signal
			case err != nil:
				fmt.Fprintln(os.Stderr, "kfake:", err)
				return 1
			}
			return 0
		}
	}
}
