package bench

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/bridge-mq/bridge/bridge"
	"github.com/bridge-mq/bridge/delivery"
)

// sendExtras are what the headers and traced modes add to a reliable
// pipe: headers on every message, or the service's tracing.
type sendExtras struct {
	headers delivery.Headers
	tracer  *bridge.MessageTracer
}

// benchHeaders are the headers mode's: three headers of 32 bytes each
// (name and value), as a content type, a tenant and a key might be.
func benchHeaders() sendExtras {
	var h delivery.Headers
	for i := range 3 {
		name := fmt.Sprintf("bridge-meta-h%d", i)
		h = append(h, delivery.Header{Name: name, Value: strings.Repeat("v", 32-len(name))})
	}
	return sendExtras{headers: h}
}

// tracedPipe is a reliable pipe traced as the service traces, sampling
// share of the messages (parent based, trace ID ratio), its spans through
// the SDK's batch span processor to an exporter that drops them: what
// tracing costs the bridge, not what a collector costs.
func tracedPipe(ctx context.Context, car *bridge.Carrier, cfg bridge.Config, stream string, share float64, log *slog.Logger, recv receiver) (*pipe, error) {
	cfg.Stream = stream
	tr, stop := bridge.NewMessageTracer(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(share)), dropSpans{}, &cfg)
	p, err := reliablePipe(ctx, car, cfg, stream, "", log, recv, sendExtras{tracer: tr})
	if err != nil {
		stop(context.Background())
		return nil, err
	}
	closePipe := p.close
	p.close = func() {
		closePipe()
		stop(context.Background())
	}
	return p, nil
}

// dropSpans is an exporter that drops what it is given.
type dropSpans struct{}

func (dropSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropSpans) Shutdown(context.Context) error                             { return nil }
