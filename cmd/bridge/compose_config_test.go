package main_test

// The compose demos (docker-compose.yml, Dockerfile, compose/) cannot run in
// CI, which has no Docker engine, so they are checked here against the
// bridge itself: every profile's configuration passes `bridge check`, the
// Dockerfile's own build line builds a static binary that runs, and the
// dashboard asks only for metrics the bridge exports.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"gopkg.in/yaml.v3"
)

// composeCarriers are the carrier profiles of docker-compose.yml and what
// their bridges must say: producer-<profile> and consumer-<profile>, or in
// work pulling consumer-<profile>-1 to -<workers>.
var composeCarriers = []struct {
	profile, transport string
	jetstream          bool
	broker             string // the service every bridge waits for; "" for tcp
	durable            bool   // the producer keeps its queue on a volume
	workers            int    // work pulling with this many workers; 0: point to point
}{
	{"tcp", "tcp", false, "", false, 0},
	{"nats", "nats", false, "nats", false, 0},
	{"jetstream", "nats", true, "nats", false, 0},
	{"amqp", "amqp", false, "rabbitmq", true, 0},
	{"kafka", "kafka", false, "kafka", true, 0},
	{"work-pulling", "tcp", false, "", false, 3},
}

// composeConsumers names the consuming bridges of a profile, as
// compose/demo-kill.sh finds them.
func composeConsumers(profile string, workers int) []string {
	if workers == 0 {
		return []string{"consumer-" + profile}
	}
	names := make([]string, workers)
	for i := range names {
		names[i] = fmt.Sprintf("consumer-%s-%d", profile, i+1)
	}
	return names
}

// composeMonitoring is the profile that adds Prometheus and Grafana.
const composeMonitoring = "monitoring"

// composeSameForBoth are the variables both ends of a stream must agree on.
var composeSameForBoth = []string{
	"BRIDGE_TRANSPORT", "BRIDGE_MODE", "BRIDGE_TCP_LISTEN", "BRIDGE_STREAM", "BRIDGE_PRODUCER_ID", "BRIDGE_SECRET",
	"BRIDGE_NATS_URL", "BRIDGE_NATS_JETSTREAM", "BRIDGE_NATS_PREFIX",
	"BRIDGE_AMQP_URL", "BRIDGE_AMQP_QUEUE_PREFIX", "BRIDGE_AMQP_EXCHANGE",
	"BRIDGE_KAFKA_BROKERS", "BRIDGE_KAFKA_TOPIC_PREFIX",
}

// composeMayDiffer are the only keys in which one bridge service may differ
// from another: the carrier is chosen by environment, and the rest is which
// profile it belongs to, which broker it waits for, where its HTTP port is
// published and where its durable queue lives.
var composeMayDiffer = []string{"environment", "profiles", "depends_on", "ports", "volumes"}

// composeService is what the tests read of a service in `config` output
// (docker-compose 1.x and `docker compose` 2.x write it alike, except for
// ports and volumes, which are read from either form).
type composeService struct {
	Build       any                `yaml:"build"`
	Image       string             `yaml:"image"`
	Profiles    []string           `yaml:"profiles"`
	Environment map[string]*string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports       []yaml.Node `yaml:"ports"`
	Volumes     []yaml.Node `yaml:"volumes"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

type composeConfig struct {
	Services map[string]composeService
	raw      map[string]map[string]any // the same services, whole
}

// activeIn reports whether a service runs with the profile: it names it, or
// names none.
func (s composeService) activeIn(profile string) bool {
	return len(s.Profiles) == 0 || slices.Contains(s.Profiles, profile)
}

func (s composeService) env(name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// composeRoot is the repository's root, where docker-compose.yml is.
func composeRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod two levels above cmd/bridge: %v", err)
	}
	return root
}

// composeTool finds docker-compose (Debian's package needs no engine for
// `config`), or Compose v2 as a docker plugin.
func composeTool(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	if p, err := exec.LookPath("docker"); err == nil && exec.Command(p, "compose", "version").Run() == nil {
		return []string{p, "compose"}
	}
	adaptertest.BrokerUnavailable(t, "docker-compose is not installed (apt-get install --no-install-recommends docker-compose), so docker-compose.yml is not checked")
	return nil
}

// loadComposeConfig runs `config` for a profile: it validates the file and
// prints it resolved (anchors merged, defaults of ${...} filled in). Only
// PATH and HOME are passed, so a developer's DEMO_* or port overrides do not
// change what is checked.
func loadComposeConfig(tool []string, root, profile string) (composeConfig, error) {
	args := append(slices.Clone(tool[1:]), "-f", filepath.Join(root, "docker-compose.yml"), "--profile", profile, "config")
	cmd := exec.Command(tool[0], args...)
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return composeConfig{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var cfg composeConfig
	var raw struct{ Services map[string]map[string]any }
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		return cfg, fmt.Errorf("reading the config of profile %s: %w", profile, err)
	}
	if err := yaml.Unmarshal(out, &raw); err != nil {
		return cfg, fmt.Errorf("reading the config of profile %s: %w", profile, err)
	}
	cfg.raw = raw.Services
	return cfg, nil
}

// composePort is one published port of a service.
type composePort struct{ published, target string }

// composePorts reads ports in the short ("8080:80") or the long form.
func composePorts(nodes []yaml.Node) ([]composePort, error) {
	var ports []composePort
	for _, n := range nodes {
		switch n.Kind {
		case yaml.ScalarNode:
			parts := strings.Split(n.Value, ":")
			p := composePort{target: parts[len(parts)-1]}
			if len(parts) > 1 {
				p.published = parts[len(parts)-2]
			}
			ports = append(ports, p)
		case yaml.MappingNode:
			var m struct{ Published, Target any }
			if err := n.Decode(&m); err != nil {
				return nil, err
			}
			ports = append(ports, composePort{published: fmt.Sprint(m.Published), target: fmt.Sprint(m.Target)})
		default:
			return nil, fmt.Errorf("a port that is neither a string nor a mapping at line %d", n.Line)
		}
	}
	return ports, nil
}

// composeVolumes reads mounts in the short ("source:target:mode") or the
// long form, as target -> source.
func composeVolumes(nodes []yaml.Node) (map[string]string, error) {
	mounts := map[string]string{}
	for _, n := range nodes {
		switch n.Kind {
		case yaml.ScalarNode:
			parts := strings.Split(n.Value, ":")
			if len(parts) < 2 {
				mounts[parts[0]] = "" // an anonymous volume
				continue
			}
			mounts[parts[1]] = parts[0]
		case yaml.MappingNode:
			var m struct{ Source, Target string }
			if err := n.Decode(&m); err != nil {
				return nil, err
			}
			mounts[m.Target] = m.Source
		default:
			return nil, fmt.Errorf("a volume that is neither a string nor a mapping at line %d", n.Line)
		}
	}
	return mounts, nil
}
