package bridge_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/bridge"
)

// withTracer has an end trace with tp.
func withTracer(tp trace.TracerProvider) func(*bridge.Env) {
	return func(env *bridge.Env) { env.TracerProvider = tp }
}

func attrOf(attrs []attribute.KeyValue, key string) attribute.Value {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value
		}
	}
	return attribute.Value{}
}

// TestTracingSpans: the producer records a span when it takes a message, a
// child of the request's trace context; the consumer one when the webhook
// confirmed it, a child of the producer's through the carried traceparent,
// with the stream, carrier, sequence number and attempts; the webhook
// request carries the consumer span's context, and the log lines about
// the message its trace ID. A request whose context is not sampled makes
// no span and goes as it came; one without a context starts a trace.
func TestTracingSpans(t *testing.T) {
	producerSpans, consumerSpans := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	producerTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(producerSpans)) // parent based, always on: the SDK's default
	consumerTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(consumerSpans))
	t.Cleanup(func() { producerTP.Shutdown(context.Background()); consumerTP.Shutdown(context.Background()) })

	var mu sync.Mutex
	var got []hookRequest
	failures := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if string(body) == "one" && failures < 2 {
			failures++
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		got = append(got, hookRequest{header: r.Header.Clone(), body: string(body)})
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	cfg := baseConfig(t)
	consumerCfg := cfg
	consumerCfg.Role, consumerCfg.Sink, consumerCfg.SinkURL = "consumer", "http", hook.URL
	consumerCfg.SinkRetryMax = 50 * time.Millisecond
	var logs adaptertest.Buffer
	startEnv(t, consumerCfg, io.Discard, &logs, withTracer(consumerTP))
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.HTTPAddr = "producer", "http", adaptertest.FreeAddr(t)
	startEnv(t, producerCfg, io.Discard, nil, withTracer(producerTP))
	waitReady(t, producerCfg.HTTPAddr)
	api := "http://" + producerCfg.HTTPAddr + "/v1/messages?confirm=true"

	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	const unsampled = "00-11111111111111111111111111111111-2222222222222222-00"
	for _, m := range []struct{ body, traceparent string }{{"one", "00-" + traceID + "-" + clientSpan + "-01"}, {"two", unsampled}, {"three", ""}} {
		hdr := map[string]string{}
		if m.traceparent != "" {
			hdr["Traceparent"] = m.traceparent
		}
		if status, answer := postWith(t, api, hdr, m.body); status != http.StatusOK {
			t.Fatalf("POST %s: %d %v", m.body, status, answer)
		}
	}
	// ?confirm=true answered once the consumer confirmed: its spans ended
	// before that (and the producer's before the message was taken).
	ps, cs := producerSpans.GetSpans(), consumerSpans.GetSpans()
	if len(ps) != 2 || len(cs) != 2 {
		t.Fatalf("%d producer spans and %d consumer spans; want 2 of each (the unsampled message has none)", len(ps), len(cs))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("the webhook took %d messages, want 3", len(got))
	}
	for i, want := range []struct {
		seqNr    int64
		attempts int64
		trace    string
	}{{1, 3, traceID}, {3, 1, ps[1].SpanContext.TraceID().String()}} {
		p, c := ps[i], cs[i]
		if p.Name != "send bridge" || p.SpanKind != trace.SpanKindProducer || c.Name != "process bridge" || c.SpanKind != trace.SpanKindConsumer {
			t.Errorf("spans %q (%v) and %q (%v)", p.Name, p.SpanKind, c.Name, c.SpanKind)
		}
		if p.SpanContext.TraceID().String() != want.trace || c.SpanContext.TraceID() != p.SpanContext.TraceID() || c.Parent.SpanID() != p.SpanContext.SpanID() {
			t.Errorf("message %d: the consumer span %v is not the child of the producer's %v in trace %s", want.seqNr, c.Parent, p.SpanContext, want.trace)
		}
		for _, s := range []tracetest.SpanStub{p, c} {
			if attrOf(s.Attributes, "messaging.destination.name").AsString() != "bridge" || attrOf(s.Attributes, "bridge.carrier").AsString() != "tcp" ||
				attrOf(s.Attributes, "bridge.seq_nr").AsInt64() != want.seqNr {
				t.Errorf("span %s of message %d: attributes %v", s.Name, want.seqNr, s.Attributes)
			}
		}
		if a := attrOf(c.Attributes, "bridge.attempts").AsInt64(); a != want.attempts {
			t.Errorf("message %d: %d attempts recorded, want %d", want.seqNr, a, want.attempts)
		}
		hookTP := got[[]int{0, 2}[i]].header.Get("Traceparent")
		if wantTP := fmt.Sprintf("00-%s-%s-01", c.SpanContext.TraceID(), c.SpanContext.SpanID()); hookTP != wantTP {
			t.Errorf("message %d: the webhook got traceparent %q, want the consumer span's %q", want.seqNr, hookTP, wantTP)
		}
	}
	if ps[0].Parent.SpanID().String() != clientSpan || ps[1].Parent.IsValid() {
		t.Errorf("producer spans' parents %v and %v; want the request's, and none", ps[0].Parent, ps[1].Parent)
	}
	if tp := got[1].header.Get("Traceparent"); tp != unsampled {
		t.Errorf("the unsampled message reached the webhook with traceparent %q, want %q as it came", tp, unsampled)
	}
	if log := logs.String(); !strings.Contains(log, "webhook failed; retrying") || !strings.Contains(log, "trace_id="+traceID) {
		t.Errorf("the webhook's failures were not logged with trace_id=%s:\n%s", traceID, log)
	}
}

// TestTracingOTLP: configured by OTEL_ variables only, the service exports
// its spans over OTLP/HTTP to a real receiver, and a graceful stop flushes
// them; with a sampler of half the traces, about half the messages have
// spans, each consumer span a child of a producer span (the producer's
// decision, made before its span, is the SDK's), and the others none.
func TestTracingOTLP(t *testing.T) {
	t.Run("always", func(t *testing.T) { testTracingOTLP(t, "", 3, 3, 3) })
	// 60 to 140: five standard deviations either side of 100.
	t.Run("half", func(t *testing.T) { testTracingOTLP(t, "traceidratio", 200, 60, 140) })
}

func testTracingOTLP(t *testing.T, sampler string, messages, least, most int) {
	var mu sync.Mutex
	var spans []*tracepb.Span
	var services []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP/HTTP protobuf export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					services = append(services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
		mu.Unlock()
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "bridge-test")
	t.Setenv("OTEL_TRACES_SAMPLER", sampler)
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")

	cfg := baseConfig(t)
	if !cfg.Tracing.On() {
		t.Fatal("OTEL_EXPORTER_OTLP_ENDPOINT set, and tracing is off")
	}
	consumerCfg := cfg
	consumerCfg.Role = "consumer"
	var out adaptertest.Buffer
	consumer := start(t, consumerCfg, &out)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.GenerateCount, producerCfg.GenerateSize = "producer", "generate", messages, 64
	producer := start(t, producerCfg, io.Discard)
	select {
	case err := <-producer.done: // every message confirmed; its spans flushed
		if err != nil {
			t.Fatal(err)
		}
		producer.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("the producer did not finish")
	}
	consumer.stop(t)

	mu.Lock()
	defer mu.Unlock()
	sent := map[string]bool{} // producer span IDs
	for _, s := range spans {
		if s.Name == "send bridge" && s.Kind == tracepb.Span_SPAN_KIND_PRODUCER {
			sent[hex.EncodeToString(s.SpanId)] = true
		}
	}
	children := 0
	for _, s := range spans {
		if s.Name == "process bridge" && sent[hex.EncodeToString(s.ParentSpanId)] {
			children++
		}
	}
	if len(sent) < least || len(sent) > most || children != len(sent) || len(spans) != 2*len(sent) {
		t.Errorf("of %d messages, the collector got %d producer spans and %d consumer spans that are their children, of %d spans; want %d to %d, as many children, nothing else",
			messages, len(sent), children, len(spans), least, most)
	}
	for _, name := range services {
		if name != "bridge-test" {
			t.Errorf("service.name %q, want OTEL_SERVICE_NAME's", name)
		}
	}
}

// TestTracingConfig: tracing is off unless OTEL_TRACES_EXPORTER=otlp or an
// OTLP endpoint is set, OTEL_TRACES_EXPORTER=none turns it off, and what
// the bridge cannot export with is refused, naming the variable.
func TestTracingConfig(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		on   bool
		fail string
	}{
		{env: map[string]string{}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, fail: "OTEL_TRACES_EXPORTER"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, on: true, fail: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, fail: "OTEL_TRACES_SAMPLER"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, fail: "OTEL_TRACES_SAMPLER_ARG"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}},
	} {
		for _, name := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
			t.Setenv(name, c.env[name])
		}
		cfg := baseConfig(t)
		cfg.Role = "consumer"
		err := cfg.ValidateRun()
		if cfg.Tracing.On() != c.on || (c.fail == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.fail) {
			t.Errorf("%v: tracing on %v, validation %v; want on %v, failing on %q", c.env, cfg.Tracing.On(), err, c.on, c.fail)
		}
	}
}

// grpcCollector is an OTLP/gRPC trace receiver: it counts the spans
// exported to it.
type grpcCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (c *grpcCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.names = append(c.names, s.Name)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTracingOTLPGRPC: with OTEL_EXPORTER_OTLP_PROTOCOL=grpc the spans go
// to an OTLP/gRPC receiver, flushed by the producer's stop.
func TestTracingOTLPGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collector := &grpcCollector{}
	collectortrace.RegisterTraceServiceServer(srv, collector)
	go srv.Serve(lis)
	defer srv.Stop()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

	cfg := baseConfig(t)
	if cfg.Tracing.Protocol != "grpc" {
		t.Fatalf("tracing %+v", cfg.Tracing)
	}
	consumerCfg := cfg
	consumerCfg.Role, consumerCfg.Tracing = "consumer", bridge.TracingConfig{} // only the producer traces
	start(t, consumerCfg, io.Discard)
	producerCfg := cfg
	producerCfg.Role, producerCfg.Source, producerCfg.GenerateCount, producerCfg.GenerateSize = "producer", "generate", 3, 64
	producer := start(t, producerCfg, io.Discard)
	select {
	case err := <-producer.done: // every message confirmed; its spans flushed
		if err != nil {
			t.Fatal(err)
		}
		producer.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("the producer did not finish")
	}
	collector.mu.Lock()
	defer collector.mu.Unlock()
	if strings.Join(collector.names, ",") != "send bridge,send bridge,send bridge" {
		t.Errorf("the gRPC collector got spans %q; want 3 producer spans", collector.names)
	}
}
