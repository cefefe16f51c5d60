package bridge

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig is what decides whether and how the service exports
// traces, from OpenTelemetry's standard variables (LoadConfig reads them;
// they are not BRIDGE_ ones). Tracing is off unless OTEL_TRACES_EXPORTER
// is otlp, or it is unset and an OTLP endpoint is set. The OpenTelemetry
// SDK reads every other OTEL_ variable itself: the endpoint, headers,
// timeout and certificates of the exporter (OTEL_EXPORTER_OTLP_*), the
// sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG; default parent
// based, always on), the batch span processor (OTEL_BSP_*) and the
// resource (OTEL_SERVICE_NAME, default "bridge", OTEL_RESOURCE_ATTRIBUTES).
type TracingConfig struct {
	Exporter string // OTEL_TRACES_EXPORTER: otlp or none
	Endpoint string // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
	Protocol string // OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (default) or grpc
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
	return errs
}

// tracing returns the tracer provider the service traces with, and what
// stops it: env's when it has one (its owner flushes it), the SDK's
// exporting OTLP when cfg turns tracing on (stop flushes it, for up to
// ShutdownTimeout), or nil.
func tracing(ctx context.Context, cfg *Config, env Env) (trace.TracerProvider, func(), error) {
	if env.TracerProvider != nil {
		return env.TracerProvider, func() {}, nil
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
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	env.Log.Info("tracing on", "protocol", cmp.Or(cfg.Tracing.Protocol, "http/protobuf"))
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), min(cfg.ShutdownTimeout, 10*time.Second))
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			env.Log.Warn("tracing: spans not all exported at shutdown", "err", err)
		}
	}, nil
}
