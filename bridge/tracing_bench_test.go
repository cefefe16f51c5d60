package bridge

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bridge-mq/bridge/delivery"
)

// BenchmarkTracing: what the producer's and the consumer's tracing cost a
// message the sampler drops, and one it samples.
func BenchmarkTracing(b *testing.B) {
	cfg := &Config{Stream: "bench", Transport: "tcp"}
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"unsampled", sdktrace.NeverSample()}, {"sampled", sdktrace.AlwaysSample()}} {
		tp, tr := newSDKTracer(sdktrace.ParentBased(c.sampler), tracetest.NewNoopExporter(), nil, cfg)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				span, hs := tr.produce(context.Background(), nil)
				produced(span, "p", 1, nil)
				d := delivery.Delivery[[]byte]{Headers: hs, SeqNr: 1}
				processed(tr.process(&d), 1, nil)
			}
		})
		tp.Shutdown(context.Background())
	}
}
