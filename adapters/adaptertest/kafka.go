//go:build unix

// Unix only: a test's hold on the shared Kafka is an flock(2), as the
// broker's control script (.ci/kafka) is a Unix shell script.

package adaptertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The variables that point the tests at a Kafka, as `make test` sets them
// for the broker .ci/kafka runs.
const (
	// KafkaBrokersVar names the test Kafka's brokers, host:port,
	// comma-separated. Default DefaultKafka.
	KafkaBrokersVar = "BRIDGE_TEST_KAFKA_BROKERS"

	// KafkaCtlVar is the command that stops, starts and restarts the test
	// Kafka: .ci/kafka, or one that takes its arguments (`stop`,
	// `start [VERSION]`, `restart`, `version`). Unset: the tests that
	// restart the broker skip (fail when brokers are required).
	KafkaCtlVar = "BRIDGE_TEST_KAFKACTL"

	// KafkaProxyListenerVar names the test Kafka's listener for a proxy:
	// one that advertises the address of a proxy in front of it rather than
	// its own, so that clients bootstrapped through the proxy stay behind it.
	// Default DefaultKafkaProxyListener.
	KafkaProxyListenerVar = "BRIDGE_TEST_KAFKA_PROXY_LISTENER"
)

// DefaultKafka and DefaultKafkaProxyListener are the addresses of the Kafka
// that .ci/kafka runs (its CHAOS listener advertises 127.0.0.1:9095).
const (
	DefaultKafka              = "127.0.0.1:9092"
	DefaultKafkaProxyListener = "127.0.0.1:9094"
)

// kafkaBrokers are the brokers of KafkaBrokersVar, or DefaultKafka.
func kafkaBrokers() []string {
	var brokers []string
	for b := range strings.SplitSeq(os.Getenv(KafkaBrokersVar), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		brokers = []string{DefaultKafka}
	}
	return brokers
}

// kafkaAnswers reports whether a broker of brokers answers an ApiVersions
// request, or why none does.
func kafkaAnswers(brokers []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for _, b := range brokers {
		var conn *kafkago.Conn
		if conn, err = (&kafkago.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", b); err == nil {
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			_, err = conn.ApiVersions()
			conn.Close()
			if err == nil {
				return nil
			}
		}
	}
	return err
}

// Kafka returns the brokers of the Apache Kafka the tests use
// (KafkaBrokersVar, default DefaultKafka) once one answers. If none does,
// the test is skipped saying so, or failed when brokers are required.
//
// The broker is shared by every test of every package, and some restart it
// (KafkaExclusive): Kafka holds it, shared, until t ends, waiting first for
// a restart under way elsewhere to finish. A parallel test takes it after
// t.Parallel, as it holds it from then on.
func Kafka(t testing.TB) []string {
	t.Helper()
	brokers, err := heldKafka(t, false)
	if err != nil {
		BrokerUnavailable(t, "%v", err)
	}
	return brokers
}

// KafkaOrKfake returns the brokers of the test Kafka, as Kafka does, when
// one answers or brokers are required; otherwise, in a plain `go test` on a
// machine with no Kafka, those of kfake, franz-go's in-process test broker,
// started for t and stopped when it ends (the log says which). real
// reports which it is.
func KafkaOrKfake(t testing.TB) (brokers []string, real bool) {
	t.Helper()
	brokers, err := heldKafka(t, false)
	switch {
	case err == nil:
		return brokers, true
	case BrokersRequired():
		BrokerUnavailable(t, "%v", err)
	}
	t.Logf("%v: running on kfake, an in-process test broker, instead (%s=1 makes this a failure)", err, RequireBrokersVar)
	return StartKfake(t), false
}

// heldKafka holds the test Kafka until t ends and returns its brokers, or
// why none answers.
func heldKafka(t testing.TB, exclusive bool) ([]string, error) {
	t.Helper()
	brokers := kafkaBrokers()
	holdKafka(t, brokers, exclusive)
	if err := kafkaAnswers(brokers); err != nil {
		return nil, fmt.Errorf("no Kafka answers at %s (%s; `make brokers` or `.ci/kafka start` runs one): %w",
			strings.Join(brokers, ","), KafkaBrokersVar, err)
	}
	return brokers, nil
}

// StartKfake starts kfake, franz-go's in-process Kafka test broker, of one
// broker on loopback for t, stops it when t ends, and returns its address.
func StartKfake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// KafkaCtl is a test's exclusive use of the test Kafka, which it may stop,
// start and restart through KafkaCtlVar's command.
type KafkaCtl struct {
	// Brokers are the brokers, as Kafka returns them.
	Brokers []string

	cmd     []string
	version string // the version Stop found running, for Start
}

// KafkaExclusive returns the test Kafka for a test that stops or restarts
// it: it waits until no test of any process holds it (Kafka), holds it
// alone until t ends, and starts it again then if the test left it stopped.
// Without KafkaCtlVar, or when no Kafka answers, the test is skipped, or
// failed when brokers are required.
//
// A test that takes it must not run beside tests of its own process that
// use Kafka, or it would wait for them while they wait for it: it must not
// be parallel, nor a subtest of one that called Kafka. When tests of its own
// process hold the broker, it fails at once rather than wait.
func KafkaExclusive(t testing.TB) *KafkaCtl {
	t.Helper()
	cmd := strings.Fields(os.Getenv(KafkaCtlVar))
	if len(cmd) == 0 {
		BrokerUnavailable(t, "no command to stop and restart Kafka: set %s (to .ci/kafka)", KafkaCtlVar)
	}
	if _, err := exec.LookPath(cmd[0]); err != nil {
		BrokerUnavailable(t, "%s=%s: %v", KafkaCtlVar, os.Getenv(KafkaCtlVar), err)
	}
	brokers, err := heldKafka(t, true)
	if err != nil {
		BrokerUnavailable(t, "%v", err)
	}
	k := &KafkaCtl{Brokers: brokers, cmd: cmd}
	t.Cleanup(func() {
		if k.version != "" {
			k.Start(t)
		}
	})
	return k
}

// KafkaToRestart is KafkaExclusive where the tests are to restart the test
// Kafka: when brokers are required, or KafkaCtlVar is set and a Kafka
// answers. Otherwise, in a plain `go test` without them, it logs why and
// returns nil, for the test to run on kfake instead.
func KafkaToRestart(t testing.TB) *KafkaCtl {
	t.Helper()
	if !BrokersRequired() {
		if os.Getenv(KafkaCtlVar) == "" {
			t.Logf("%s is not set: running on kfake, an in-process test broker, rather than restarting a Kafka", KafkaCtlVar)
			return nil
		}
		if err := kafkaAnswers(kafkaBrokers()); err != nil {
			t.Logf("no Kafka answers at %s (%v): running on kfake, an in-process test broker, instead", strings.Join(kafkaBrokers(), ","), err)
			return nil
		}
	}
	return KafkaExclusive(t)
}

// Version is the version of the broker that runs, as the control command
// says.
func (k *KafkaCtl) Version(t testing.TB) string {
	t.Helper()
	return strings.TrimSpace(k.run(t, "version"))
}

// Restart stops the broker and starts it again, on its data, and returns
// once it answers; it fails the test if it cannot.
func (k *KafkaCtl) Restart(t testing.TB) {
	t.Helper()
	k.run(t, "restart")
}

// Stop stops the broker, keeping its data; Start (or the end of the test)
// starts it again.
func (k *KafkaCtl) Stop(t testing.TB) {
	t.Helper()
	k.version = k.Version(t)
	k.run(t, "stop")
}

// Start starts the broker Stop stopped, the same version, and returns once
// it answers.
func (k *KafkaCtl) Start(t testing.TB) {
	t.Helper()
	k.run(t, "start", k.version)
	k.version = ""
}

// run runs the control command and returns its standard output; it logs
// what the command said and how long it took, and fails the test if it
// failed.
func (k *KafkaCtl) run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.cmd[0], append(k.cmd[1:], args...)...)
	// The hold is this test's already: .ci/kafka must not wait for it.
	cmd.Env = append(os.Environ(), "BRIDGE_TEST_KAFKA_HELD=1")
	// On the timeout, the command's children go with it (the broker it
	// starts has a session of its own), and a child that still holds its
	// output does not keep Run waiting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	t.Logf("%s %s (%v): %s", strings.Join(k.cmd, " "), strings.Join(args, " "), time.Since(began).Round(time.Millisecond),
		strings.TrimSpace(stdout.String()+"\n"+stderr.String()))
	if err != nil {
		t.Fatalf("%s %s: %v", strings.Join(k.cmd, " "), strings.Join(args, " "), err)
	}
	return stdout.String()
}

// ProxyListener returns the broker's listener for a proxy
// (KafkaProxyListenerVar, default DefaultKafkaProxyListener) and the address
// it advertises: where the proxy must listen, forwarding to the listener.
// It fails the test if the broker has no such listener.
func (k *KafkaCtl) ProxyListener(t testing.TB) (listener, advertised string) {
	t.Helper()
	listener = os.Getenv(KafkaProxyListenerVar)
	if listener == "" {
		listener = DefaultKafkaProxyListener
	}
	conn, err := (&kafkago.Dialer{Timeout: 5 * time.Second}).Dial("tcp", listener)
	var brokers []kafkago.Broker
	if err == nil {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		// Metadata on this connection: the brokers as this listener
		// advertises them.
		brokers, err = conn.Brokers()
		conn.Close()
	}
	if err == nil && len(brokers) != 1 {
		err = fmt.Errorf("the metadata names %d brokers; want the one", len(brokers))
	}
	if err != nil {
		t.Fatalf("Kafka's listener for a proxy at %s (%s; .ci/kafka's CHAOS listener): %v", listener, KafkaProxyListenerVar, err)
	}
	advertised = net.JoinHostPort(brokers[0].Host, strconv.Itoa(brokers[0].Port))
	if advertised == listener {
		t.Fatalf("Kafka's listener at %s (%s) advertises itself, not a proxy's address", listener, KafkaProxyListenerVar)
	}
	return listener, advertised
}

// kafkaShared counts this process's shared holds, which an exclusive one
// would wait for forever.
var kafkaShared struct {
	sync.Mutex
	n int
}

// holdKafka holds the Kafka at brokers, shared or exclusive, until t ends:
// an flock on a file named after them in the temporary directory, which
// every test process on the machine takes before it uses that Kafka, and
// .ci/kafka before it stops the broker (for 127.0.0.1:9092,
// bridge-test-kafka-127.0.0.1_9092.lock).
func holdKafka(t testing.TB, brokers []string, exclusive bool) {
	t.Helper()
	how, what := syscall.LOCK_SH, "shared"
	if exclusive {
		how, what = syscall.LOCK_EX, "exclusive"
		kafkaShared.Lock()
		n := kafkaShared.n
		kafkaShared.Unlock()
		if n > 0 {
			t.Fatalf("adaptertest: %d tests of this process use Kafka, and this one would restart it: it would wait for them forever. A test that takes KafkaExclusive is not parallel, nor in a test that called Kafka", n)
		}
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.Join(brokers, ","))
	path := filepath.Join(os.TempDir(), "bridge-test-kafka-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("adaptertest: the lock on the test Kafka: %v", err)
	}
	// Taking it waits for the other side's tests, which can be minutes: say
	// so if it does.
	slow := time.AfterFunc(10*time.Second, func() {
		t.Logf("still waiting for the %s hold on the Kafka at %s (%s): tests of another process hold it", what, strings.Join(brokers, ","), path)
	})
	for {
		if err = syscall.Flock(int(f.Fd()), how); err != syscall.EINTR {
			break
		}
	}
	slow.Stop()
	if err != nil {
		f.Close()
		t.Fatalf("adaptertest: flock %s: %v", path, err)
	}
	if !exclusive {
		kafkaShared.Lock()
		kafkaShared.n++
		kafkaShared.Unlock()
	}
	t.Cleanup(func() {
		f.Close() // releases the flock
		if !exclusive {
			kafkaShared.Lock()
			kafkaShared.n--
			kafkaShared.Unlock()
		}
	})
}
