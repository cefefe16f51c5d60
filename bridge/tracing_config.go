package bridge

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracingConfig is what decides whether and how the service exports
// traces, from OpenTelemetry's standard variables (LoadConfig reads them;
// they are not BRIDGE_ ones). Tracing is off unless OTEL_TRACES_EXPORTER
// is otlp, or it is unset and an OTLP endpoint is set. The sampler is
// read here too, as the SDK would read it, because the service asks it
// before it starts a span (so that what it drops costs next to nothing).
// The OpenTelemetry SDK reads every other OTEL_ variable itself: the
// endpoint, headers, timeout and certificates of the exporter
// (OTEL_EXPORTER_OTLP_*), the batch span processor (OTEL_BSP_*) and the
// resource (OTEL_SERVICE_NAME, default "bridge", OTEL_RESOURCE_ATTRIBUTES).
type TracingConfig struct {
	Exporter   string // OTEL_TRACES_EXPORTER: otlp or none
	Endpoint   string // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
	Protocol   string // OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (default) or grpc
	Sampler    string // OTEL_TRACES_SAMPLER: parentbased_always_on (default), parentbased_always_off, parentbased_traceidratio, always_on, always_off, traceidratio
	SamplerArg string // OTEL_TRACES_SAMPLER_ARG: a ratio's share of traces, 0 to 1 (default 1)
}

// On reports whether the service traces.
func (t TracingConfig) On() bool {
	return t.Exporter == "otlp" || t.Exporter == "" && t.Endpoint != ""
}

// tracingFromEnv reads the variables TracingConfig names.
func tracingFromEnv() TracingConfig {
	first := func(names ...string) string {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	return TracingConfig{
		Exporter: os.Getenv("OTEL_TRACES_EXPORTER"),
		Endpoint: first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
		Protocol: first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),

		Sampler:    os.Getenv("OTEL_TRACES_SAMPLER"),
		SamplerArg: os.Getenv("OTEL_TRACES_SAMPLER_ARG"),
	}
}

// check reports the variables whose values the service cannot follow.
func (t TracingConfig) check() []error {
	var errs []error
	switch t.Exporter {
	case "", "otlp", "none":
	default:
		errs = append(errs, &ConfigError{Var: "OTEL_TRACES_EXPORTER", Value: t.Exporter, Reason: "the bridge exports traces with otlp, or none"})
	}
	switch t.Protocol {
	case "", "http/protobuf", "grpc":
	default:
		errs = append(errs, &ConfigError{Var: "OTEL_EXPORTER_OTLP_PROTOCOL", Value: t.Protocol, Reason: "the bridge exports OTLP as http/protobuf or grpc"})
	}
	if _, err := t.sampler(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// sampler is the sampler OTEL_TRACES_SAMPLER and its argument name.
func (t TracingConfig) sampler() (sdktrace.Sampler, error) {
	ratio := 1.0
	if t.SamplerArg != "" && strings.HasSuffix(t.Sampler, "traceidratio") {
		r, err := strconv.ParseFloat(t.SamplerArg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, &ConfigError{Var: "OTEL_TRACES_SAMPLER_ARG", Value: t.SamplerArg, Reason: "a share of traces, from 0 to 1"}
		}
		ratio = r
	}
	switch t.Sampler {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, &ConfigError{Var: "OTEL_TRACES_SAMPLER", Value: t.Sampler, Reason: "one of parentbased_always_on, parentbased_always_off, parentbased_traceidratio, always_on, always_off, traceidratio"}
}

// tracing returns the tracer the service traces with, and what stops it:
// on env's provider when it has one (its owner flushes it), on the SDK's
// exporting OTLP when cfg turns tracing on (stop flushes it, for up to
// ShutdownTimeout), or nil.
func tracing(ctx context.Context, cfg *Config, env Env) (*tracer, func(), error) {
	if env.TracerProvider != nil {
		return newTracer(env.TracerProvider, cfg), func() {}, nil
	}
	if !cfg.Tracing.On() {
		return nil, func() {}, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	if cfg.Tracing.Protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	// Later options win: OTEL_SERVICE_NAME over the default.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "bridge")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		env.Log.Warn("tracing: the resource is incomplete", "err", err) // a partial resource still traces
	}
	sampler, err := cfg.Tracing.sampler()
	if err != nil {
		return nil, nil, err // validation refused it first
	}
	tp, tr := newSDKTracer(sampler, exp, res, cfg)
	env.Log.Info("tracing on", "protocol", cmp.Or(cfg.Tracing.Protocol, "http/protobuf"), "sampler", sampler.Description())
	return tr, func() {
		ctx, cancel := context.WithTimeout(context.Background(), min(cfg.ShutdownTimeout, 10*time.Second))
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			env.Log.Warn("tracing: spans not all exported at shutdown", "err", err)
		}
	}, nil
}
