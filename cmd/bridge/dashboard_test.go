package main_test

// The Grafana dashboard checked against the metrics the bridge exports.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
)

// TestComposeDashboard checks the Grafana files under compose/grafana: the
// dashboard is JSON, its panels use the provisioned data source, and every
// bridge_ metric it queries is one the bridge exports, from the end its
// selector names (role="producer" or "consumer"), read from the /metrics of
// a producer and a consumer running here over tcp.
func TestComposeDashboard(t *testing.T) {
	t.Parallel()
	root := composeRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "compose", "grafana", "dashboards", "bridge.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Definition string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("compose/grafana/dashboards/bridge.json: %v", err)
	}
	ds, err := os.ReadFile(filepath.Join(root, "compose", "grafana", "provisioning", "datasources", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var provisioned struct{ Datasources []struct{ UID string } }
	if err := yaml.Unmarshal(ds, &provisioned); err != nil || len(provisioned.Datasources) != 1 {
		t.Fatalf("compose/grafana/provisioning/datasources/prometheus.yml: want one data source (%v)", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if p.Datasource.UID != provisioned.Datasources[0].UID || len(p.Targets) == 0 {
			t.Errorf("panel %q queries %d targets of data source %q; want the provisioned %q", p.Title, len(p.Targets), p.Datasource.UID, provisioned.Datasources[0].UID)
		}
	}

	tcpAddr, producerHTTP, consumerHTTP := adaptertest.FreeAddr(t), adaptertest.FreeAddr(t), adaptertest.FreeAddr(t)
	common := []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + tcpAddr, "BRIDGE_SECRET=dashboard-secret-of-the-tests"}
	consumer := startProc(t, nil, nil, append(common, "BRIDGE_ROLE=consumer", "BRIDGE_HTTP_ADDR="+consumerHTTP)...)
	producer := startProc(t, nil, nil, append(common, "BRIDGE_ROLE=producer", "BRIDGE_SOURCE=generate",
		"BRIDGE_GENERATE_RATE=200", "BRIDGE_HTTP_ADDR="+producerHTTP)...)
	exported := map[string]map[string]bool{
		"producer": composeMetricNames(t, producerHTTP, "bridge_confirmed_seq_nr"),
		"consumer": composeMetricNames(t, consumerHTTP, "bridge_messages_delivered_total"),
	}
	producer.terminate(t, "producer")
	consumer.terminate(t, "consumer")

	var queries []string
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			queries = append(queries, target.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		queries = append(queries, v.Definition)
	}
	selector := regexp.MustCompile(`\b(bridge_[a-z0-9_]+)(\{[^}]*\})?`)
	role := regexp.MustCompile(`role\s*=\s*"(producer|consumer)"`)
	found := 0
	for _, m := range selector.FindAllStringSubmatch(strings.Join(queries, "\n"), -1) {
		found++
		ends := []string{"producer", "consumer"}
		if r := role.FindStringSubmatch(m[2]); r != nil {
			ends = []string{r[1]}
		}
		ok := false
		for _, end := range ends {
			ok = ok || exported[end][m[1]]
		}
		if !ok {
			t.Errorf("the dashboard queries %s%s, which no %v exports", m[1], m[2], ends)
		}
	}
	if found == 0 {
		t.Error("the dashboard queries no bridge_ metric")
	}
}

// composeMetricNames polls a bridge's /metrics until it exports metric
// (a bridge exports its protocol's metrics once its link is open), and
// returns the names of every metric it exports.
func composeMetricNames(t *testing.T, addr, metric string) map[string]bool {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var body []byte
	for ctx.Err() == nil {
		body = nil
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if resp, err := client.Do(req); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		names := map[string]bool{}
		for _, line := range strings.Split(string(body), "\n") {
			if name, _, _ := strings.Cut(line, " "); line != "" && !strings.HasPrefix(line, "#") {
				name, _, _ = strings.Cut(name, "{")
				names[name] = true
			}
		}
		if names[metric] {
			return names
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("http://%s/metrics did not export %s in 20s:\n%s", addr, metric, body)
	return nil
}
