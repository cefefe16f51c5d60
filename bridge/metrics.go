package bridge

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bridge-mq/bridge/delivery"
)

// metrics is the service's Prometheus registry. The protocol's counters are
// read from the controllers' and the link's Stats at scrape time, so the hot
// path pays nothing; the latency histogram is observed as messages go.
type metrics struct {
	reg     *prometheus.Registry
	latency prometheus.Histogram

	mu       sync.Mutex
	producer func() delivery.ProducerStats
	wp       func() delivery.WorkPullingStats
	consumer func() delivery.ConsumerStats
	link     func() delivery.LinkStatus
	seal     func() delivery.SealStats // nil: frames are not sealed
	sink     func() uint64             // the webhook's failed attempts; nil for other sinks
	dead     func() map[string]uint64  // messages dead-lettered, by reason; nil for other sinks
	dlq      func() (int, time.Time, error)
	labels   prometheus.Labels
}

func newMetrics(cfg *Config) *metrics {
	m := &metrics{
		reg:    prometheus.NewRegistry(),
		labels: prometheus.Labels{"stream": cfg.Stream, "role": cfg.Role, "transport": cfg.Transport},
	}
	help := "Producer: seconds from a message's acceptance to the consumer's confirmation (sampled). " +
		"Consumer: seconds from a message's delivery to the sink's confirmation."
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bridge_latency_seconds", Help: help, ConstLabels: m.labels,
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100 µs to 13 s
	})
	m.reg.MustRegister(m.latency, (*statsCollector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) watchProducer(p interface{ Stats() delivery.ProducerStats }, link delivery.Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.producer = p.Stats
	m.watchLink(link)
}

func (m *metrics) watchWorkPulling(stats func() delivery.WorkPullingStats, link delivery.Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wp = stats
	m.watchLink(link)
}

func (m *metrics) watchConsumer(c interface{ Stats() delivery.ConsumerStats }, link delivery.Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.consumer = c.Stats
	m.watchLink(link)
}

// watchLink reads the link's status and, for a sealed link, its counts.
// m.mu is held.
func (m *metrics) watchLink(link delivery.Link) {
	m.link = linkStatus(link)
	if s, ok := link.(interface{ Stats() delivery.SealStats }); ok {
		m.seal = s.Stats
	}
}

// watchSink counts the sink's failed attempts and its dead letters.
func (m *metrics) watchSink(failures func() uint64, dead func() map[string]uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sink, m.dead = failures, dead
}

// watchDLQ reads the dead-letter queue's depth and its oldest's time.
func (m *metrics) watchDLQ(stats func() (int, time.Time, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dlq = stats
}

// linkStatus reads a link's status; a link that cannot tell is connected.
func linkStatus(l delivery.Link) func() delivery.LinkStatus {
	if r, ok := l.(delivery.StatusReporter); ok {
		return r.Status
	}
	return func() delivery.LinkStatus { return delivery.LinkStatus{Connected: true} }
}

func (m *metrics) observe(d time.Duration) { m.latency.Observe(d.Seconds()) }

// statsCollector turns Stats snapshots into metrics.
type statsCollector metrics

type metricDef struct {
	name, help string
	kind       prometheus.ValueType
}

var (
	producerMetrics = []metricDef{
		{"bridge_messages_sent_total", "Sequenced messages sent for the first time (chunks count one each).", prometheus.CounterValue},
		{"bridge_messages_resent_total", "Sequenced messages sent again.", prometheus.CounterValue},
		{"bridge_confirmed_seq_nr", "Highest sequence number the consumer confirmed.", prometheus.GaugeValue},
		{"bridge_unconfirmed", "Sequence numbers taken and not yet confirmed: the producer's buffer (with a durable queue, its depth).", prometheus.GaugeValue},
		{"bridge_unconfirmed_bytes", "Payload bytes held unconfirmed (with a durable queue, on disk).", prometheus.GaugeValue},
		{"bridge_window", "Sequence numbers the producer may still send before it must wait for the consumer.", prometheus.GaugeValue},
		{"bridge_registrations_ignored_total", "Consumer registrations not acted on: late repeats from the consumer followed, or within 100 ms of the last.", prometheus.CounterValue},
		{"bridge_messages_refused_total", "Messages taken, then refused as larger than the consumer takes (their confirmations fail).", prometheus.CounterValue},
	}
	consumerMetrics = []metricDef{
		{"bridge_messages_delivered_total", "Messages handed to the sink.", prometheus.CounterValue},
		{"bridge_confirmed_seq_nr", "Highest sequence number the sink confirmed.", prometheus.GaugeValue},
		{"bridge_duplicates_dropped_total", "Messages dropped as already received.", prometheus.CounterValue},
		{"bridge_gap_drops_total", "Messages dropped while waiting for a resend.", prometheus.CounterValue},
		{"bridge_lost_total", "Sequence numbers skipped in only-flow-control mode.", prometheus.CounterValue},
		{"bridge_resend_requests_total", "Resends asked of the producer.", prometheus.CounterValue},
		{"bridge_window", "Sequence numbers granted to the producer and not yet received.", prometheus.GaugeValue},
		{"bridge_messages_refused_total", "Messages skipped as larger than BRIDGE_MAX_MESSAGE_SIZE (the producer is told).", prometheus.CounterValue},
		{"bridge_beyond_window_drops_total", "Messages dropped as beyond the window granted to the producer.", prometheus.CounterValue},
	}
	workPullingMetrics = []metricDef{
		{"bridge_messages_taken_total", "Work pulling: messages taken from the source.", prometheus.CounterValue},
		{"bridge_messages_confirmed_total", "Work pulling: messages confirmed by the worker that finally got them.", prometheus.CounterValue},
		{"bridge_unconfirmed", "Work pulling: messages taken and not yet confirmed (with a durable queue, its depth).", prometheus.GaugeValue},
		{"bridge_messages_handed_back_total", "Work pulling: messages handed back by workers that left or died, for other workers (only these can arrive twice).", prometheus.CounterValue},
		{"bridge_workers", "Work pulling: workers served now.", prometheus.GaugeValue},
		{"bridge_workers_left_total", "Work pulling: workers no longer served (left, failed, or silent past BRIDGE_WORKER_TIMEOUT).", prometheus.CounterValue},
		{"bridge_workers_refused_total", "Work pulling: hellos of new workers refused as BRIDGE_MAX_WORKERS were served.", prometheus.CounterValue},
	}
	workerDemand   = metricDef{"bridge_worker_demand", "Work pulling: messages the worker's window takes now.", prometheus.GaugeValue}
	workerInFlight = metricDef{"bridge_worker_in_flight", "Work pulling: messages handed to the worker and not yet confirmed.", prometheus.GaugeValue}
	sinkFailures   = metricDef{"bridge_sink_failures_total", "Webhook attempts that failed (no answer, or not a 2xx; each is retried, or with BRIDGE_DLQ may dead-letter).", prometheus.CounterValue}
	deadLetters    = metricDef{"bridge_dead_letters_total", "Messages the sink gave up on and recorded in BRIDGE_DLQ, by reason: refused (a 4xx but 408 and 429), attempts (BRIDGE_SINK_MAX_ATTEMPTS failed).", prometheus.CounterValue}
	dlqMetrics     = []metricDef{
		{"bridge_dlq_waiting", "Dead letters in BRIDGE_DLQ not yet replayed.", prometheus.GaugeValue},
		{"bridge_dlq_oldest_age_seconds", "Age of the oldest dead letter in BRIDGE_DLQ (0 when there is none).", prometheus.GaugeValue},
	}
	framesRejected = metricDef{"bridge_frames_rejected_total", "Frames received that did not open under BRIDGE_SECRET, dropped unread, by reason: unsealed, version, truncated, forged (0 without a secret).", prometheus.CounterValue}
	linkMetrics    = []metricDef{
		{"bridge_frames_sent_total", "Frames sent on the carrier.", prometheus.CounterValue},
		{"bridge_frames_received_total", "Frames received from the carrier.", prometheus.CounterValue},
		{"bridge_send_errors_total", "Frames the carrier failed to send (their messages are resent).", prometheus.CounterValue},
		{"bridge_bad_frames_total", "Received frames dropped as malformed.", prometheus.CounterValue},
		{"bridge_connected", "1 while the carrier is connected.", prometheus.GaugeValue},
		{"bridge_reconnects_total", "Times the carrier connected again after losing its connection.", prometheus.CounterValue},
	}
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*metrics)(c)
	m.mu.Lock()
	producer, consumer, link, seal, sink, dead, dlq, wp := m.producer, m.consumer, m.link, m.seal, m.sink, m.dead, m.dlq, m.wp
	m.mu.Unlock()
	emit := func(d metricDef, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(d.name, d.help, nil, m.labels), d.kind, v)
	}
	var frames [4]uint64
	if producer != nil {
		s := producer()
		window := 0.0
		if s.RequestedSeqNr > s.SentSeqNr {
			window = float64(s.RequestedSeqNr - s.SentSeqNr)
		}
		for i, v := range []float64{float64(s.MessagesSent), float64(s.Resent), float64(s.ConfirmedSeqNr),
			float64(s.Unconfirmed()), float64(s.HeldBytes), window, float64(s.RegistersIgnored), float64(s.Refused)} {
			emit(producerMetrics[i], v)
		}
		frames = [4]uint64{s.FramesSent, s.FramesReceived, s.SendErrors, s.BadFrames}
	}
	if wp != nil {
		s := wp()
		for i, v := range []float64{float64(s.Taken), float64(s.Confirmed), float64(s.Unconfirmed), float64(s.HandedBack),
			float64(len(s.Workers)), float64(s.Left), float64(s.HellosRefused)} {
			emit(workPullingMetrics[i], v)
		}
		demand := prometheus.NewDesc(workerDemand.name, workerDemand.help, []string{"worker"}, m.labels)
		inFlight := prometheus.NewDesc(workerInFlight.name, workerInFlight.help, []string{"worker"}, m.labels)
		for _, w := range s.Workers {
			ch <- prometheus.MustNewConstMetric(demand, workerDemand.kind, float64(w.Demand), w.ID)
			ch <- prometheus.MustNewConstMetric(inFlight, workerInFlight.kind, float64(w.InFlight), w.ID)
			frames[0] += w.Stream.FramesSent
			frames[1] += w.Stream.FramesReceived
			frames[2] += w.Stream.SendErrors
			frames[3] += w.Stream.BadFrames
		}
	}
	if consumer != nil {
		s := consumer()
		window := 0.0
		if s.RequestedSeqNr > s.ReceivedSeqNr {
			window = float64(s.RequestedSeqNr - s.ReceivedSeqNr)
		}
		for i, v := range []float64{float64(s.Delivered), float64(s.ConfirmedSeqNr), float64(s.Duplicates),
			float64(s.GapDrops), float64(s.Lost), float64(s.ResendRequests), window, float64(s.Refused), float64(s.BeyondWindow)} {
			emit(consumerMetrics[i], v)
		}
		frames = [4]uint64{s.FramesSent, s.FramesReceived, s.SendErrors, s.BadFrames}
	}
	if sink != nil {
		emit(sinkFailures, float64(sink()))
	}
	if dead != nil {
		desc := prometheus.NewDesc(deadLetters.name, deadLetters.help, []string{"reason"}, m.labels)
		counts := dead()
		for _, reason := range []string{ReasonRefused, ReasonAttempts} {
			ch <- prometheus.MustNewConstMetric(desc, deadLetters.kind, float64(counts[reason]), reason)
		}
	}
	if dlq != nil {
		if waiting, oldest, err := dlq(); err == nil { // a queue that cannot be read has no figure
			age := 0.0
			if !oldest.IsZero() {
				age = time.Since(oldest).Seconds()
			}
			emit(dlqMetrics[0], float64(waiting))
			emit(dlqMetrics[1], age)
		}
	}
	if link == nil {
		return
	}
	rejected := delivery.SealStats{}
	if seal != nil {
		rejected = seal()
	}
	desc := prometheus.NewDesc(framesRejected.name, framesRejected.help, []string{"reason"}, m.labels)
	for _, reason := range []string{delivery.RejectUnsealed, delivery.RejectVersion, delivery.RejectShort, delivery.RejectForged} {
		ch <- prometheus.MustNewConstMetric(desc, framesRejected.kind, float64(rejected.Rejected[reason]), reason)
	}
	st := link()
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	for i, v := range []float64{float64(frames[0]), float64(frames[1]), float64(frames[2]), float64(frames[3]), connected, float64(st.Reconnects)} {
		emit(linkMetrics[i], v)
	}
}
