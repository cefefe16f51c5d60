package main_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
)

// faultKind names a fault the chaos suite injects.
type faultKind string

const (
	killConsumer faultKind = "kill-consumer" // SIGKILL of the consumer process, then a new one
	killProducer faultKind = "kill-producer" // SIGKILL of the producer process (durable queue on), then a new one
	cutLink      faultKind = "cut"           // the proxy between bridge and broker (or peer) drops every connection and refuses new ones for a while
	addLatency   faultKind = "latency"       // the proxy delays every byte by 40±20 ms for a while
	brokerFault  faultKind = "broker"        // the broker restarts (NATS, Kafka) or closes every connection of the stream (RabbitMQ)
)

var allFaults = []faultKind{killConsumer, killProducer, cutLink, addLatency, brokerFault}

// rig is one carrier's world for a chaos run: the variables that select
// it, the toxiproxy between the bridges and what they connect to, and the
// broker-side fault where the machine allows one.
type rig struct {
	name          string
	vars          []string // both ends
	producerVars  []string
	consumerVars  []string
	proxy         *toxiproxy.Proxy
	faults        []faultKind
	brokerFault   func(t *testing.T) // nil: the carrier has no broker to fault
	brokerFaultIs string             // what brokerFault does, for the report
}

// toxics is the in-process toxiproxy server the proxies belong to.
var toxics = sync.OnceValue(func() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
})

// newProxy starts a toxiproxy proxy at listen (a free port if empty) in
// front of upstream.
func newProxy(t *testing.T, name, listen, upstream string) *toxiproxy.Proxy {
	t.Helper()
	if listen == "" {
		listen = adaptertest.FreeAddr(t)
	}
	p := toxiproxy.NewProxy(toxics(), name, listen, upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// rigs builds each carrier's world; a carrier's broker missing from the
// machine skips it (or fails, when brokers are required).
var rigs = []struct {
	name  string
	build func(t *testing.T) *rig
}{
	{"tcp", tcpRig},
	{"nats", func(t *testing.T) *rig { return natsRig(t, false) }},
	{"jetstream", func(t *testing.T) *rig { return natsRig(t, true) }},
	{"amqp", amqpRig},
	{"kafka", kafkaRig},
}

// tcpRig: the producer dials the consumer through the proxy.
func tcpRig(t *testing.T) *rig {
	consumerAddr := adaptertest.FreeAddr(t)
	px := newProxy(t, "tcp", "", consumerAddr)
	return &rig{
		name:         "tcp",
		vars:         []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_SECRET=chaos-secret-of-the-tests"},
		producerVars: []string{"BRIDGE_TCP_ADDR=" + px.Listen},
		consumerVars: []string{"BRIDGE_TCP_ADDR=" + consumerAddr},
		proxy:        px,
		faults:       []faultKind{killConsumer, killProducer, cutLink, addLatency},
	}
}

// natsRig: both bridges reach an embedded NATS server (restartable on its
// port, JetStream on disk) through the proxy.
func natsRig(t *testing.T, jetstream bool) *rig {
	ctx := context.Background()
	_, port, _ := net.SplitHostPort(adaptertest.FreeAddr(t))
	p, _ := strconv.Atoi(port)
	srv := adaptertest.StartNATS(t, adaptertest.NATSOptions{Port: p, StoreDir: t.TempDir()})
	px := newProxy(t, "nats", "", net.JoinHostPort("127.0.0.1", port))
	r := &rig{
		name:          "nats",
		vars:          []string{"BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_URL=nats://" + px.Listen},
		proxy:         px,
		faults:        allFaults,
		brokerFaultIs: "the NATS server restarts on its port",
		brokerFault: func(t *testing.T) {
			if err := srv.Restart(ctx); err != nil {
				t.Errorf("restarting NATS: %v", err)
			}
		},
	}
	if jetstream {
		r.name = "jetstream"
		r.vars = append(r.vars, "BRIDGE_NATS_JETSTREAM=true")
		r.brokerFaultIs = "the NATS server restarts on its port (JetStream on disk)"
	}
	return r
}

// amqpRig: both bridges reach the machine's RabbitMQ through the proxy; the
// broker fault closes every connection of the stream from the broker's side
// (the broker is shared: it is not restarted).
func amqpRig(t *testing.T) *rig {
	url := adaptertest.RabbitMQ(t)
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Fatalf("rabbitmqctl is needed to close connections from the broker's side: %v", err)
	}
	stream := fmt.Sprintf("chaos-%d", time.Now().UnixNano())
	t.Cleanup(func() { adaptertest.DeleteQueues(url, "bridge."+stream+".data", "bridge."+stream+".control") })
	px := newProxy(t, "amqp", "", "127.0.0.1:5672")
	return &rig{
		name:          "amqp",
		vars:          []string{"BRIDGE_TRANSPORT=amqp", "BRIDGE_AMQP_URL=amqp://guest:guest@" + px.Listen + "/", "BRIDGE_STREAM=" + stream},
		proxy:         px,
		faults:        allFaults,
		brokerFaultIs: "RabbitMQ closes every connection of the stream (rabbitmqctl close_connection)",
		brokerFault:   func(t *testing.T) { closeRabbitConnections(t, "bridge "+stream+" ") },
	}
}

// closeRabbitConnections closes, from the broker's side, every connection
// whose name starts with prefix.
func closeRabbitConnections(t *testing.T, prefix string) {
	out, err := exec.Command("rabbitmqctl", "list_connections", "-q", "--no-table-headers", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Errorf("rabbitmqctl list_connections: %v: %s", err, out)
		return
	}
	closed := 0
	for line := range strings.Lines(string(out)) {
		pid, props, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && strings.Contains(props, `{"connection_name","`+prefix) {
			if out, err := exec.Command("rabbitmqctl", "close_connection", pid, "chaos").CombinedOutput(); err != nil {
				t.Logf("rabbitmqctl close_connection: %v: %s", err, out)
			}
			closed++
		}
	}
	if closed == 0 {
		t.Errorf("no RabbitMQ connection named %q to close", prefix)
	}
}

// kafkaRig: both bridges reach Kafka through the proxy, and every
// connection after the first metadata too: the broker hands its clients the
// address the proxy listens at.
//
// Under `make test`: the test Kafka (Apache Kafka, .ci/kafka), which the rig
// has to itself meanwhile (adaptertest.KafkaToRestart). Its listener for a
// proxy (127.0.0.1:9094, CHAOS) advertises a fixed address (127.0.0.1:9095),
// where the proxy listens, in front of that listener. The broker fault
// restarts it through its control command, on its data.
//
// In a plain `go test` with no Kafka to restart: kfake (kfakeRig).
func kafkaRig(t *testing.T) *rig {
	k := adaptertest.KafkaToRestart(t)
	if k == nil {
		return kfakeRig(t)
	}
	listener, advertised := k.ProxyListener(t)
	stream := fmt.Sprintf("chaos-%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteKafkaStream(t, k.Brokers, stream) })
	px := newProxy(t, "kafka", advertised, listener)
	return &rig{
		name:          "kafka",
		vars:          []string{"BRIDGE_TRANSPORT=kafka", "BRIDGE_KAFKA_BROKERS=" + px.Listen, "BRIDGE_STREAM=" + stream},
		proxy:         px,
		faults:        allFaults,
		brokerFaultIs: "Apache Kafka " + k.Version(t) + " (one node) stops and starts again on its data (.ci/kafka restart)",
		brokerFault:   func(t *testing.T) { k.Restart(t) },
	}
}

// kfakeRig: both bridges reach kfake through the proxy. kfake advertises the
// address its listener reports, so a listener that reports the proxy's
// address keeps every connection going through the proxy. The broker fault
// stops kfake and starts a new one on the same port and data directory.
func kfakeRig(t *testing.T) *rig {
	proxyAddr := adaptertest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(adaptertest.FreeAddr(t))
	p, _ := strconv.Atoi(port)
	advertised, _ := net.ResolveTCPAddr("tcp", proxyAddr)
	dir := t.TempDir()
	opts := []kfake.Opt{
		kfake.Ports(p),
		kfake.DataDir(dir),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			return advertisingListener{Listener: ln, addr: advertised}, err
		}),
	}
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var mu sync.Mutex
	cluster := start()
	t.Cleanup(func() { mu.Lock(); cluster.Close(); mu.Unlock() })
	px := newProxy(t, "kafka", proxyAddr, net.JoinHostPort("127.0.0.1", port))
	return &rig{
		name:          "kafka",
		vars:          []string{"BRIDGE_TRANSPORT=kafka", "BRIDGE_KAFKA_BROKERS=" + px.Listen},
		proxy:         px,
		faults:        allFaults,
		brokerFaultIs: "kfake stops and a new one starts on its port and data directory (no Kafka to restart)",
		brokerFault: func(t *testing.T) {
			mu.Lock()
			defer mu.Unlock()
			cluster.Close()
			cluster = start()
		},
	}
}

// advertisingListener reports another address than its own.
type advertisingListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisingListener) Addr() net.Addr { return l.addr }

// withLatency adds latency to every byte through the proxy, both ways, and
// returns the function that takes it away.
func withLatency(t *testing.T, px *toxiproxy.Proxy) func() {
	var names []string
	for _, stream := range []string{"upstream", "downstream"} {
		name := "latency_" + stream
		spec := fmt.Sprintf(`{"name":%q,"type":"latency","stream":%q,"attributes":{"latency":40,"jitter":20}}`, name, stream)
		if _, err := px.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
			t.Errorf("adding latency: %v", err)
			continue
		}
		names = append(names, name)
	}
	return func() {
		for _, name := range names {
			if err := px.Toxics.RemoveToxic(context.Background(), name); err != nil {
				t.Errorf("removing latency: %v", err)
			}
		}
	}
}
