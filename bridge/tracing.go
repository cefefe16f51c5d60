package bridge

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/bridge-mq/bridge/delivery"
)

// tracer records the service's spans, and carries their W3C trace context
// in the messages' traceparent and tracestate headers. The producer records
// a span ("send STREAM", kind producer) when it takes a message, a child of
// the trace context the message came with (an HTTP request's or an NDJSON
// line's), and the message carries the span's context; the consumer
// records one ("process STREAM", kind consumer) from when its sink is
// handed the message until the sink confirmed it, a child of the carried
// context, which it hands the webhook. Only what the sampler samples is
// traced: a message the producer's span does not sample goes as it came
// (with the caller's traceparent, or none), and the consumer starts no
// span for a message without a traceparent, so an unsampled message costs
// one sampling decision and nothing on the wire. A nil *tracer traces
// nothing; its methods cost a nil check.
//
// When the tracer knows its provider's sampler (sampler not nil: the
// provider is the one newSDKTracer made), it asks it first, and starts no
// span for what it drops; a root span's trace ID, drawn for that
// question, goes to the provider through the context (see idGenerator),
// so both decide on the same ID.
type tracer struct {
	t                  trace.Tracer
	sampler            sdktrace.Sampler
	attrs              []attribute.KeyValue
	sendName, procName string
	propagator         propagation.TraceContext
	// sendOpts and procOpts are the spans' start options, made once: each
	// option made per span is an allocation.
	sendOpts, procOpts []trace.SpanStartOption
	// rootBound, with rootKnown, is the sampler's decision for a root span
	// as TraceIDRatioBased takes it: sampled when the trace ID's low half,
	// big-endian, shifted right by one, is below it. presample then draws
	// that half first and drops a root span for one random number.
	rootBound uint64
	rootKnown bool
}

// The spans' attributes beside the stream's and the carrier's.
const (
	attrSeqNr    = attribute.Key("bridge.seq_nr")
	attrAttempts = attribute.Key("bridge.attempts")
	attrProducer = attribute.Key("bridge.producer_id")
)

// tracerName is the instrumentation scope of the service's spans.
const tracerName = "github.com/bridge-mq/bridge/bridge"

// newTracer returns the service's tracer on tp; nil (trace nothing) for a
// nil tp.
func newTracer(tp trace.TracerProvider, cfg *Config) *tracer {
	if tp == nil {
		return nil
	}
	tr := &tracer{
		t: tp.Tracer(tracerName),
		attrs: []attribute.KeyValue{
			attribute.String("messaging.system", "bridge"),
			attribute.String("messaging.destination.name", cfg.Stream),
			attribute.String("bridge.carrier", cfg.Transport),
		},
		sendName: "send " + cfg.Stream,
		procName: "process " + cfg.Stream,
	}
	tr.sendOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(tr.attrs...)}
	tr.procOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(tr.attrs...)}
	return tr
}

// rootBound returns the bound (see tracer.rootBound) by which sampler
// decides a root span, when it is one of the SDK's the service makes
// (TracingConfig's), which describe themselves as the specification says:
// "AlwaysOnSampler", "AlwaysOffSampler", "TraceIDRatioBased{share}", or
// "ParentBased{root:...,...}" around one of those. false for any other.
func rootBound(sampler sdktrace.Sampler) (uint64, bool) {
	d := sampler.Description()
	if rest, ok := strings.CutPrefix(d, "ParentBased{root:"); ok {
		d, _, _ = strings.Cut(rest, ",")
	}
	switch d {
	case "AlwaysOnSampler", "TraceIDRatioBased{1}":
		return 1 << 63, true
	case "AlwaysOffSampler", "TraceIDRatioBased{0}":
		return 0, true
	}
	if share, ok := strings.CutPrefix(d, "TraceIDRatioBased{"); ok {
		f, err := strconv.ParseFloat(strings.TrimSuffix(share, "}"), 64)
		if err == nil && f > 0 && f < 1 {
			return uint64(f * (1 << 63)), true // as the SDK computes it
		}
	}
	return 0, false
}

// produce starts the producer span of a message with headers hs, a child
// of the trace context in hs (if any). When the span is recorded it
// returns it and hs carrying its context; otherwise nil and hs as given.
// hs is the caller's to change.
func (tr *tracer) produce(ctx context.Context, hs delivery.Headers) (trace.Span, delivery.Headers) {
	if tr == nil {
		return nil, hs
	}
	if _, ok := hs.Get("traceparent"); ok {
		ctx = tr.extract(ctx, hs)
	}
	var drop bool
	if ctx, drop = tr.presample(ctx, tr.sendName, trace.SpanKindProducer); drop {
		return nil, hs
	}
	ctx, span := tr.t.Start(ctx, tr.sendName, tr.sendOpts...)
	if !span.IsRecording() {
		return nil, hs
	}
	return span, tr.inject(ctx, hs)
}

// extract returns ctx with the trace context hs carries. (hs is its own
// here: a carrier of its address costs an allocation only when used.)
func (tr *tracer) extract(ctx context.Context, hs delivery.Headers) context.Context {
	return tr.propagator.Extract(ctx, headerCarrier{&hs})
}

// inject returns hs carrying ctx's trace context.
func (tr *tracer) inject(ctx context.Context, hs delivery.Headers) delivery.Headers {
	tr.propagator.Inject(ctx, headerCarrier{&hs})
	return hs
}

// produced ends a producer span: the message was taken as seqNr, or err
// says why not. A nil span is a no-op.
func produced(span trace.Span, producerID string, seqNr delivery.SeqNr, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attrSeqNr.Int64(int64(seqNr)), attrProducer.String(producerID))
	}
	span.End()
}

// process starts the consumer span of d, a child of the trace context d
// carries, when d carries one and the span is recorded; d's headers then
// carry the span's context (for the webhook). It returns nil otherwise.
func (tr *tracer) process(d *delivery.Delivery[[]byte]) trace.Span {
	if tr == nil {
		return nil
	}
	if _, ok := d.Headers.Get("traceparent"); !ok {
		return nil
	}
	parent := tr.extract(context.Background(), d.Headers)
	if !trace.SpanContextFromContext(parent).IsValid() {
		return nil // a traceparent that does not parse: not traced
	}
	if _, drop := tr.presample(parent, tr.procName, trace.SpanKindConsumer); drop {
		return nil
	}
	ctx, span := tr.t.Start(parent, tr.procName, tr.procOpts...)
	if !span.IsRecording() {
		return nil
	}
	span.SetAttributes(attrSeqNr.Int64(int64(d.SeqNr)), attrProducer.String(d.ProducerID))
	d.Headers = tr.inject(ctx, slices.Clone(d.Headers))
	return span
}

// processed ends a consumer span once the sink confirmed its message after
// attempts tries, or failed with err. A nil span is a no-op.
func processed(span trace.Span, attempts int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attrAttempts.Int(attempts))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// presample asks the sampler, if the tracer knows it, whether a span
// would be sampled as a child of ctx's span (or, without one, as a root:
// then the returned context holds the trace ID drawn for it).
func (tr *tracer) presample(ctx context.Context, name string, kind trace.SpanKind) (context.Context, bool) {
	if tr.sampler == nil {
		return ctx, false
	}
	p := sdktrace.SamplingParameters{ParentContext: ctx, Name: name, Kind: kind}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() && tr.rootKnown {
		lo := rand.Uint64()
		if lo>>1 >= tr.rootBound {
			return ctx, true
		}
		var id trace.TraceID
		binary.BigEndian.PutUint64(id[8:], lo)
		binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
		for !id.IsValid() {
			binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
		}
		return context.WithValue(ctx, traceIDKey{}, id), false
	}
	if sc.IsValid() {
		p.TraceID = sc.TraceID()
	} else {
		p.TraceID = newTraceID()
	}
	if tr.sampler.ShouldSample(p).Decision == sdktrace.Drop {
		return ctx, true
	}
	if !sc.IsValid() {
		ctx = context.WithValue(ctx, traceIDKey{}, p.TraceID)
	}
	return ctx, false
}

// traceIDKey holds, in a context, the trace ID presample drew for a root
// span.
type traceIDKey struct{}

// idGenerator is the provider's source of IDs: a root span's trace ID is
// the one presample drew, when it drew one. IDs are random, as the SDK's
// own are (not from a cryptographic source).
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, ok := ctx.Value(traceIDKey{}).(trace.TraceID)
	if !ok {
		tid = newTraceID()
	}
	return tid, newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newTraceID() (id trace.TraceID) {
	for !id.IsValid() {
		binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() (id trace.SpanID) {
	for !id.IsValid() {
		binary.LittleEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// newSDKTracer makes OpenTelemetry's tracer provider with sampler, its
// spans through a batch span processor to exp, and the service's tracer on
// it, which knows the sampler.
func newSDKTracer(sampler sdktrace.Sampler, exp sdktrace.SpanExporter, res *resource.Resource, cfg *Config) (*sdktrace.TracerProvider, *tracer) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler), sdktrace.WithIDGenerator(idGenerator{}), sdktrace.WithBatcher(exp)}
	if res != nil {
		opts = append(opts, sdktrace.WithResource(res))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	tr := newTracer(tp, cfg)
	tr.sampler = sampler
	tr.rootBound, tr.rootKnown = rootBound(sampler)
	return tp, tr
}

// headerCarrier lets the propagator read and write a message's headers.
type headerCarrier struct{ h *delivery.Headers }

func (c headerCarrier) Get(key string) string {
	v, _ := c.h.Get(key)
	return v
}

func (c headerCarrier) Set(key, value string) {
	key = strings.ToLower(key)
	for i := range *c.h {
		if (*c.h)[i].Name == key {
			(*c.h)[i].Value = value
			return
		}
	}
	*c.h = append(*c.h, delivery.Header{Name: key, Value: value})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, x := range *c.h {
		keys[i] = x.Name
	}
	return keys
}

// traceID is a log attribute naming the trace of a message with headers
// hs, from its traceparent; empty (a handler leaves it out) without one.
func traceID(hs delivery.Headers) slog.Attr {
	tp, ok := hs.Get("traceparent")
	// version "-" trace-id (32 hex) "-" ...
	if !ok || len(tp) < 36 || tp[2] != '-' || tp[35] != '-' {
		return slog.Attr{}
	}
	return slog.String("trace_id", tp[3:35])
}

// MessageTracer traces messages as the service does (see tracer), for a
// program that drives the controllers itself: the bench's traced mode.
// A nil *MessageTracer traces nothing.
type MessageTracer struct{ tr *tracer }

// NewMessageTracer traces as the service does with cfg's stream and
// carrier: with sampler, its spans through a batch span processor to exp.
// The function returned flushes and stops it.
func NewMessageTracer(sampler sdktrace.Sampler, exp sdktrace.SpanExporter, cfg *Config) (*MessageTracer, func(context.Context) error) {
	tp, tr := newSDKTracer(sampler, exp, nil, cfg)
	return &MessageTracer{tr: tr}, tp.Shutdown
}

// Send sends msg with headers hs (the caller's to change) as a source of
// the service does: within a producer span when one is sampled.
func (m *MessageTracer) Send(ctx context.Context, p *delivery.ProducerController[[]byte], msg []byte, hs delivery.Headers) (delivery.SeqNr, error) {
	var span trace.Span
	if m != nil {
		span, hs = m.tr.produce(ctx, hs)
	}
	seqNr, _, err := p.SendMessage(ctx, delivery.Outgoing[[]byte]{Message: msg, Headers: hs})
	produced(span, p.ID(), seqNr, err)
	return seqNr, err
}

// Process starts d's consumer span as the service's consumer does; nil
// when d is not traced. Confirmed ends it.
func (m *MessageTracer) Process(d *delivery.Delivery[[]byte]) trace.Span {
	if m == nil {
		return nil
	}
	return m.tr.process(d)
}

// Confirmed ends a span Process started, once its message is confirmed at
// the first attempt. A nil span is a no-op.
func (m *MessageTracer) Confirmed(span trace.Span) { processed(span, 1, nil) }
