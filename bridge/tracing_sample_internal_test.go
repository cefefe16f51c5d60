package bridge

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestRootBoundAgreesWithSDK: for every sampler the service makes, the
// tracer's own root decision (one random number, no span) is the SDK
// sampler's for the same trace ID, so presample never drops what the
// provider would sample, nor the other way round.
func TestRootBoundAgreesWithSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, name := range []string{"", "parentbased_always_off", "parentbased_traceidratio", "always_on", "always_off", "traceidratio"} {
		for _, arg := range []string{"", "0", "0.01", "0.5", "1"} {
			tc := TracingConfig{Sampler: name, SamplerArg: arg}
			s, err := tc.sampler()
			if err != nil {
				t.Fatal(err)
			}
			bound, ok := rootBound(s)
			if !ok {
				t.Fatalf("%s: the tracer does not know its root decision", s.Description())
			}
			for range 20000 {
				var id trace.TraceID
				binary.BigEndian.PutUint64(id[:8], r.Uint64())
				binary.BigEndian.PutUint64(id[8:], r.Uint64())
				sdk := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id}).Decision == sdktrace.RecordAndSample
				if mine := binary.BigEndian.Uint64(id[8:])>>1 < bound; mine != sdk {
					t.Fatalf("%s, trace %s: tracer samples %v, SDK %v", s.Description(), id, mine, sdk)
				}
			}
		}
	}
	if _, ok := rootBound(customSampler{}); ok {
		t.Fatal("a sampler the tracer does not know is taken for a known one")
	}
}

type customSampler struct{ sdktrace.Sampler }

func (customSampler) Description() string { return "Custom" }
