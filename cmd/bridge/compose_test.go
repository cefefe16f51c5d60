package main_test

// TestComposeProfiles: every carrier profile of docker-compose.yml is valid and its bridges pass `bridge check`.

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestComposeProfiles validates docker-compose.yml with docker-compose for
// every profile, then checks each carrier's two bridges: `bridge check`
// accepts exactly the environment the service gets, the environment says
// the role and carrier the service's name does, both ends agree, they wait
// for a healthy broker, and every bridge is defined the same way apart from
// its environment.
func TestComposeProfiles(t *testing.T) {
	t.Parallel()
	tool := composeTool(t)
	root := composeRoot(t)

	profiles := []string{composeMonitoring}
	for _, c := range composeCarriers {
		profiles = append(profiles, c.profile)
	}
	configs := make([]composeConfig, len(profiles))
	errs := make([]error, len(profiles))
	var wg sync.WaitGroup
	for i, p := range profiles {
		wg.Go(func() { configs[i], errs[i] = loadComposeConfig(tool, root, p) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	exposed := dockerfileExposed(t, root)
	targets := prometheusTargets(t, root)
	local := composeLocalServices(t, root)
	published := map[string]string{} // host port -> service
	streams := map[string]string{}   // stream -> profile
	var reference map[string]any     // a bridge service without what may differ
	var referenceName string

	for i, profile := range profiles {
		cfg := configs[i]
		t.Run(profile, func(t *testing.T) {
			checkComposeProfile(t, cfg, profile)
			if profile == composeMonitoring {
				for _, name := range []string{"prometheus", "grafana"} {
					if s, ok := cfg.Services[name]; !ok || !s.activeIn(profile) {
						t.Errorf("profile %s runs no %s service", profile, name)
					}
				}
				return
			}
			c := composeCarriers[i-1]
			ends := map[string]composeService{}
			for name, s := range cfg.Services {
				if s.activeIn(profile) && s.Build != nil {
					ends[name] = s
				}
			}
			producer, consumers := "producer-"+profile, composeConsumers(profile, c.workers)
			want := append([]string{producer}, consumers...)
			if got := slices.Sorted(maps.Keys(ends)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Fatalf("the bridges of profile %s are %v; want %v", profile, got, want)
			}
			for _, name := range want {
				role := "consumer"
				if name == producer {
					role = "producer"
				}
				s := ends[name]
				checkComposeBridge(t, name, role, s, c.transport, c.jetstream)
				checkComposeBroker(t, cfg, name, s, c.broker)
				port := checkComposeHTTP(t, name, s, published, exposed)
				if !slices.Contains(targets, name+":"+port) {
					t.Errorf("compose/prometheus/prometheus.yml does not scrape %s:%s", name, port)
				}
				if _, ok := local[name]; !ok {
					t.Errorf("docker-compose.local.yml does not build %s from the local images: make demo-test would pull its base images from a registry", name)
				}
				stripped := composeWithout(cfg.raw[name], composeMayDiffer...)
				if reference == nil {
					reference, referenceName = stripped, name
				} else if !reflect.DeepEqual(stripped, reference) {
					t.Errorf("%s is defined differently from %s in more than %v:\n%v\n%v", name, referenceName, composeMayDiffer, stripped, reference)
				}
			}
			p := ends[producer]
			for _, consumer := range consumers {
				co := ends[consumer]
				for _, v := range composeSameForBoth {
					if p.env(v) != co.env(v) {
						t.Errorf("%s has %s=%q but %s has %q: both ends of a stream need the same", producer, v, p.env(v), consumer, co.env(v))
					}
				}
				if sink := co.env("BRIDGE_SINK"); sink != "stdout" {
					t.Errorf("%s: BRIDGE_SINK=%q; compose/demo-kill.sh counts the consumer's stdout", consumer, sink)
				}
			}
			checkComposeMode(t, profile, c.workers, ends, consumers)
			if other, dup := streams[p.env("BRIDGE_STREAM")]; dup {
				t.Errorf("profiles %s and %s both use stream %q: run together, they would share queues and subjects", other, profile, p.env("BRIDGE_STREAM"))
			}
			streams[p.env("BRIDGE_STREAM")] = profile
			if c.transport == "tcp" {
				checkComposeTCP(t, producer, ends)
			}
			checkComposeDurable(t, producer, p, c.durable)
			if src := p.env("BRIDGE_SOURCE"); src != "generate" {
				t.Errorf("%s: BRIDGE_SOURCE=%q; compose/demo-kill.sh needs generate", producer, src)
			}
		})
	}
}

// checkComposeProfile checks what holds for any profile: a service waits
// only for services of the same profile, for a healthy one only if it has
// a health check, and every file mounted from the repository exists.
func checkComposeProfile(t *testing.T, cfg composeConfig, profile string) {
	for name, s := range cfg.Services {
		if !s.activeIn(profile) {
			continue
		}
		for dep, d := range s.DependsOn {
			ds, ok := cfg.Services[dep]
			switch {
			case !ok || !ds.activeIn(profile):
				t.Errorf("%s depends on %s, which profile %s does not run", name, dep, profile)
			case d.Condition == "service_healthy" && (ds.Healthcheck == nil || ds.Healthcheck.Disable || len(ds.Healthcheck.Test) == 0):
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			}
		}
		mounts, err := composeVolumes(s.Volumes)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for target, source := range mounts {
			if filepath.IsAbs(source) {
				if _, err := os.Stat(source); err != nil {
					t.Errorf("%s mounts %s at %s: %v", name, source, target, err)
				}
			}
		}
	}
}

// checkComposeBridge runs `bridge check` on exactly the service's
// environment, and checks it says the role and carrier the name implies.
func checkComposeBridge(t *testing.T, name, role string, s composeService, transport string, jetstream bool) {
	t.Helper()
	var vars []string
	for k, v := range s.Environment {
		if !strings.HasPrefix(k, "BRIDGE_") {
			t.Errorf("%s sets %s: the bridge reads only BRIDGE_ variables", name, k)
		}
		if v == nil {
			t.Errorf("%s: %s has no value (it would be taken from the host)", name, k)
			continue
		}
		vars = append(vars, k+"="+*v)
	}
	sort.Strings(vars)
	code, stdout, stderr := output(t, []string{"check"}, vars...)
	if code != 0 {
		t.Fatalf("%s: bridge check exits %d on its environment %v:\n%s", name, code, vars, stderr)
	}
	want := fmt.Sprintf("%s of stream %q over %s", role, s.env("BRIDGE_STREAM"), transport)
	if !strings.Contains(stdout, want) {
		t.Errorf("%s: bridge check says %q; want %q", name, stdout, want)
	}
	if got := s.env("BRIDGE_ROLE"); got != role {
		t.Errorf("%s: BRIDGE_ROLE=%q; its name says %s", name, got, role)
	}
	if got := s.env("BRIDGE_TRANSPORT"); got != transport {
		t.Errorf("%s: BRIDGE_TRANSPORT=%q; its profile says %s", name, got, transport)
	}
	js := false
	if v := s.env("BRIDGE_NATS_JETSTREAM"); v != "" {
		js, _ = strconv.ParseBool(v) // bridge check has refused what does not parse
	}
	if js != jetstream {
		t.Errorf("%s: BRIDGE_NATS_JETSTREAM=%q; its profile wants JetStream %v", name, s.env("BRIDGE_NATS_JETSTREAM"), jetstream)
	}
}

// checkComposeBroker checks that the bridge waits for its broker to be
// healthy and reaches it by its service name.
func checkComposeBroker(t *testing.T, cfg composeConfig, name string, s composeService, broker string) {
	t.Helper()
	if broker == "" {
		return
	}
	if d, ok := s.DependsOn[broker]; !ok || d.Condition != "service_healthy" {
		t.Errorf("%s does not wait for %s to be healthy (depends_on condition: service_healthy)", name, broker)
	}
	if _, ok := cfg.Services[broker]; !ok {
		t.Fatalf("no %s service", broker)
	}
	var hosts []string
	for _, raw := range []string{s.env("BRIDGE_NATS_URL"), s.env("BRIDGE_AMQP_URL")} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		hosts = append(hosts, u.Hostname())
	}
	for _, b := range strings.Split(s.env("BRIDGE_KAFKA_BROKERS"), ",") {
		if host, _, err := net.SplitHostPort(strings.TrimSpace(b)); err == nil {
			hosts = append(hosts, host)
		}
	}
	if len(hosts) == 0 {
		t.Errorf("%s names no broker address", name)
	}
	for _, h := range hosts {
		if h != broker {
			t.Errorf("%s reaches its broker at %s; the service is %s", name, h, broker)
		}
	}
}

// checkComposeHTTP checks that the bridge serves HTTP on a port the image
// exposes and the service publishes on a host port no other bridge uses,
// and returns the container's port.
func checkComposeHTTP(t *testing.T, name string, s composeService, published map[string]string, exposed []string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(s.env("BRIDGE_HTTP_ADDR"))
	if err != nil {
		t.Errorf("%s: BRIDGE_HTTP_ADDR=%q: /metrics, /healthz and /readyz need a server", name, s.env("BRIDGE_HTTP_ADDR"))
		return ""
	}
	if !slices.Contains(exposed, port) {
		t.Errorf("%s serves HTTP on %s, which the Dockerfile does not EXPOSE (%v)", name, port, exposed)
	}
	ports, err := composePorts(s.Ports)
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	var host string
	for _, p := range ports {
		if p.target == port {
			host = p.published
		}
	}
	if host == "" || host == "<nil>" {
		t.Errorf("%s does not publish its HTTP port %s", name, port)
	} else if other, dup := published[host]; dup && other != name {
		t.Errorf("%s and %s both publish host port %s", name, other, host)
	}
	published[host] = name
	return port
}

// checkComposeTCP checks that the listening end (the consumer, or the
// producer with BRIDGE_TCP_LISTEN=producer, as in work pulling) listens on
// every interface and every other bridge dials it by its service name, with
// a secret.
func checkComposeTCP(t *testing.T, producer string, ends map[string]composeService) {
	t.Helper()
	listener := ""
	for name, s := range ends {
		if (s.env("BRIDGE_TCP_LISTEN") == "producer") == (name == producer) {
			if listener != "" {
				t.Errorf("%s and %s both listen", listener, name)
			}
			listener = name
		}
	}
	if listener == "" {
		t.Fatalf("no bridge of %v listens", slices.Sorted(maps.Keys(ends)))
	}
	host, port, err := net.SplitHostPort(ends[listener].env("BRIDGE_TCP_ADDR"))
	if err != nil || (host != "0.0.0.0" && host != "") {
		t.Errorf("%s: BRIDGE_TCP_ADDR=%q; a listener in a container listens on 0.0.0.0", listener, ends[listener].env("BRIDGE_TCP_ADDR"))
	}
	for name, s := range ends {
		if s.env("BRIDGE_SECRET") == "" {
			t.Errorf("%s: no BRIDGE_SECRET", name)
		}
		if want := net.JoinHostPort(listener, port); name != listener && s.env("BRIDGE_TCP_ADDR") != want {
			t.Errorf("%s: BRIDGE_TCP_ADDR=%q; want %s", name, s.env("BRIDGE_TCP_ADDR"), want)
		}
	}
}

// composeLocalServices reads the services docker-compose.local.yml
// overrides.
func composeLocalServices(t *testing.T, root string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.local.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var local struct{ Services map[string]any }
	if err := yaml.Unmarshal(b, &local); err != nil {
		t.Fatalf("docker-compose.local.yml: %v", err)
	}
	return local.Services
}

// checkComposeMode checks the delivery mode: point to point by default, and
// in a work-pulling profile every bridge says so and each worker has an ID
// of its own, which the producer's per-worker metrics are labelled with.
func checkComposeMode(t *testing.T, profile string, workers int, ends map[string]composeService, consumers []string) {
	t.Helper()
	for name, s := range ends {
		mode := s.env("BRIDGE_MODE")
		if workers == 0 && mode != "" && mode != "point-to-point" {
			t.Errorf("%s: BRIDGE_MODE=%q in point-to-point profile %s", name, mode, profile)
		}
		if workers > 0 && mode != "work-pulling" {
			t.Errorf("%s: BRIDGE_MODE=%q; profile %s is work pulling", name, mode, profile)
		}
	}
	ids := map[string]string{}
	for _, name := range consumers {
		id := ends[name].env("BRIDGE_WORKER_ID")
		if workers > 0 && id == "" {
			t.Errorf("%s has no BRIDGE_WORKER_ID: its metrics would be labelled with a container's host name", name)
		}
		if other, dup := ids[id]; dup && id != "" {
			t.Errorf("%s and %s are both worker %q", other, name, id)
		}
		ids[id] = name
	}
}

// checkComposeDurable checks that a producer with a durable queue keeps it
// on a named volume, which outlives the container.
func checkComposeDurable(t *testing.T, name string, s composeService, durable bool) {
	t.Helper()
	dir := s.env("BRIDGE_DURABLE_DIR")
	if !durable {
		return
	}
	if dir == "" {
		t.Errorf("%s has no BRIDGE_DURABLE_DIR", name)
		return
	}
	mounts, _ := composeVolumes(s.Volumes)
	if src, ok := mounts[dir]; !ok || src == "" || filepath.IsAbs(src) || strings.HasPrefix(src, ".") {
		t.Errorf("%s keeps its durable queue in %s, where no named volume is mounted (%v)", name, dir, mounts)
	}
}

// prometheusTargets lists what compose/prometheus/prometheus.yml scrapes.
func prometheusTargets(t *testing.T, root string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "compose", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("compose/prometheus/prometheus.yml: %v", err)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	return targets
}

// composeWithout returns a copy of m without the keys given.
func composeWithout(m map[string]any, without ...string) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		if !slices.Contains(without, k) {
			c[k] = v
		}
	}
	return c
}
