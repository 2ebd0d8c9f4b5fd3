package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chatd/persistence/batch"
	"chatd/transport/sse"
)

// liveMetrics exports what the hub, the WebSocket and SSE handlers and
// the batching writer count, as Prometheus metrics. It implements
// hub.Metrics, hub.BusMetrics, ws.Metrics and batch.Metrics; sse gives the
// SSE handler its sse.Metrics.
type liveMetrics struct {
	connections  prometheus.Gauge
	active       prometheus.Gauge
	ttft         *prometheus.HistogramVec
	tokensPerSec *prometheus.HistogramVec
	finished     *prometheus.CounterVec
	upstreamErrs *prometheus.CounterVec
	deltas       prometheus.Counter
	deltaFrames  prometheus.Counter
	slowClients  *prometheus.CounterVec // by transport and reason
	connRefused  prometheus.Counter
	flushLatency prometheus.Histogram
	flushFails   prometheus.Counter
	reg          prometheus.Registerer

	// The sweep of answers left streaming, which runs in a single process
	// too: always registered.
	swept prometheus.Counter

	// The cluster's, registered by watchBus (an instance alone exports none of these).
	busFailures *prometheus.CounterVec
	takenOver   prometheus.Counter
	mirrored    prometheus.Gauge
	mirrorsLost prometheus.Counter
	fromStore   prometheus.Counter
}

func newLiveMetrics(reg prometheus.Registerer) (*liveMetrics, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &liveMetrics{reg: reg}
	latency := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30}
	var errs []error
	gauge := func(name, help string) prometheus.Gauge {
		g, err := register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
		errs = append(errs, err)
		return g
	}
	counter := func(name, help string) prometheus.Counter {
		c, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
		errs = append(errs, err)
		return c
	}
	m.connections = gauge("chatd_ws_connections", "Open WebSocket connections.")
	m.active = gauge("chatd_generations_active", "Answers being generated now.")
	m.deltas = counter("chatd_deltas_sent_total", "Delta frames handed to subscribers (one per subscriber).")
	m.deltaFrames = counter("chatd_delta_frames_encoded_total", "Delta frames encoded (once, whatever the number of subscribers).")
	m.connRefused = counter("chatd_ws_connections_refused_total",
		"WebSocket connections refused because their user had CHATD_MAX_CONNS_PER_USER open (closed with 1013).")
	m.flushFails = counter("chatd_writer_flush_failures_total", "Bulk writes of the batching writer that failed (and were retried).")
	// Its name is the cluster's, where it came first; a single process
	// sweeps too (hub/sweep.go).
	m.swept = counter("chatd_bus_answers_swept_total",
		"Answers left streaming with nothing to end them (their end could not be stored) that this instance's sweep stored as interrupted.")
	var err error
	m.ttft, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chatd_time_to_first_token_seconds", Help: "Time from a request to the first token of its answer, by model.",
		Buckets: latency}, []string{"model"}))
	errs = append(errs, err)
	m.tokensPerSec, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chatd_tokens_per_second", Help: "Upstream deltas per second after the first token, by model.",
		Buckets: []float64{1, 5, 10, 20, 40, 80, 160, 320, 640}}, []string{"model"}))
	errs = append(errs, err)
	m.finished, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_generations_total", Help: "Finished answers by model and final status."}, []string{"model", "status"}))
	errs = append(errs, err)
	m.upstreamErrs, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_upstream_errors_total", Help: "Answers the model provider failed, by model and error kind " +
			"(not those the server's own duration limit stopped, nor those whose end could not be stored).",
	}, []string{"model", "kind"}))
	errs = append(errs, err)
	m.slowClients, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_slow_client_disconnects_total",
		Help: "Live-channel connections (transport websocket or sse) closed because their client was too slow: " +
			"its send queue filled up (reason queue_full, 4408) or a write outlived the 10s write timeout (write_timeout).",
	}, []string{"transport", "reason"}))
	errs = append(errs, err)
	for _, tr := range []string{transportWebSocket, transportSSE} {
		for _, reason := range []string{"queue_full", "write_timeout"} {
			m.slowClients.WithLabelValues(tr, reason) // exported at 0 from the start
		}
	}
	m.flushLatency, err = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "chatd_writer_flush_seconds", Help: "Duration of the batching writer's bulk writes.", Buckets: latency}))
	errs = append(errs, err)
	m.busFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chatd_bus_call_failures_total",
		Help: "Failed calls to the cluster bus (each is retried), by what they were for."}, []string{"call"})
	m.takenOver = prometheus.NewCounter(prometheus.CounterOpts{Name: "chatd_bus_answers_taken_over_total",
		Help: "Answers of instances whose lease expired that this instance ended as interrupted."})
	m.mirrored = prometheus.NewGauge(prometheus.GaugeOpts{Name: "chatd_bus_mirrored_answers",
		Help: "Answers running on other instances that this instance streams to its tabs."})
	m.mirrorsLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "chatd_bus_mirrors_lost_total",
		Help: "Mirrored answers whose stream this instance lost (the bus failed); their tabs were told to reconnect."})
	m.fromStore = prometheus.NewCounter(prometheus.CounterOpts{Name: "chatd_bus_mirrors_from_store_total",
		Help: "Holes in mirrored answers (frames the answer stream no longer held when read) filled from the store: the stream is too small for the traffic."})
	return m, errors.Join(errs...)
}

// busGauges are what a bus may tell of the cluster beside its health;
// each nil func is not exported.
type busGauges struct {
	instances     func() int // chatd_bus_instances
	keyConflicts  func() int // chatd_bus_session_key_conflicts
	limitFailures func() int // chatd_bus_limit_failures_total (a counter)
	clockSteps    func() int // chatd_bus_lease_clock_steps_total (a counter)
	eventsDropped func() int // chatd_bus_events_dropped_total (a counter)
}

// busGaugesOf reads the gauges bus offers.
func busGaugesOf(bus any) busGauges {
	var g busGauges
	if b, ok := bus.(interface{ Instances() int }); ok {
		g.instances = b.Instances
	}
	if b, ok := bus.(interface{ SessionKeyConflicts() int }); ok {
		g.keyConflicts = b.SessionKeyConflicts
	}
	if b, ok := bus.(interface{ LimitFailures() int }); ok {
		g.limitFailures = b.LimitFailures
	}
	if b, ok := bus.(interface{ LeaseClockSteps() int }); ok {
		g.clockSteps = b.LeaseClockSteps
	}
	if b, ok := bus.(interface{ EventsDropped() int }); ok {
		g.eventsDropped = b.EventsDropped
	}
	return g
}

// watchBus registers the cluster's metrics, with chatd_bus_up from
// health (nil: the bus is usable) and the gauges g offers.
func (m *liveMetrics) watchBus(health func(context.Context) error, g busGauges) error {
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chatd_bus_up",
		Help: "1 while the cluster bus is usable (connected, this instance's lease renewed), else 0."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if health(ctx) != nil {
				return 0
			}
			return 1
		})
	// Called before the hub exists; the collectors already registered
	// under these names (another App in this process) are used instead.
	var errs []error
	keep := func(err error) { errs = append(errs, err) }
	_, err := register(m.reg, up)
	keep(err)
	m.busFailures, err = register(m.reg, m.busFailures)
	keep(err)
	m.takenOver, err = register(m.reg, m.takenOver)
	keep(err)
	m.mirrored, err = register(m.reg, m.mirrored)
	keep(err)
	m.mirrorsLost, err = register(m.reg, m.mirrorsLost)
	keep(err)
	m.fromStore, err = register(m.reg, m.fromStore)
	keep(err)
	gauge := func(name, help string, f func() int) {
		if f != nil {
			_, err := register(m.reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
				func() float64 { return float64(f()) }))
			keep(err)
		}
	}
	gauge("chatd_bus_instances", "Instances of the cluster with a live lease, this one included, as this instance sees them.",
		g.instances)
	gauge("chatd_bus_session_key_conflicts", "Instances with a live lease that would refuse this instance's session "+
		"tokens or sign tokens it refuses (JWT_SECRET differs): 0 when they all agree.", g.keyConflicts)
	counter := func(name, help string, f func() int) {
		if f != nil {
			_, err := register(m.reg, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(f()) }))
			keep(err)
		}
	}
	counter("chatd_bus_limit_failures_total", "Cluster-wide limit checks that failed (NATS not answering): "+
		"each request was held to this instance's own limit.", g.limitFailures)
	counter("chatd_bus_lease_clock_steps_total", "Times the leases stream's clock was found to step (its leader moved to a NATS "+
		"server whose clock differs): each time this instance judged no other dead for a lease TTL. Above 0: the NATS servers' clocks disagree.",
		g.clockSteps)
	counter("chatd_bus_events_dropped_total", "User events broadcast while this instance was cut off from NATS that never went out: "+
		"its outbox was full (the oldest dropped) or they were older than the events stream keeps events when NATS came back. "+
		"Tabs on the other instances see those changes at their next reload.", g.eventsDropped)
	return errors.Join(errs...)
}

// watchWriter exports the writer's queue depth.
func (m *liveMetrics) watchWriter(w *batch.Writer) error {
	_, err1 := register(m.reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatd_writer_messages", Help: "Messages the batching writer tracks (streaming, or with updates not yet durable).",
	}, func() float64 { return float64(w.Stats().Messages) }))
	_, err2 := register(m.reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatd_writer_pending_bytes", Help: "Streamed text waiting in the batching writer to be written.",
	}, func() float64 { return float64(w.Stats().PendingBytes) }))
	return errors.Join(err1, err2)
}

// register registers c, or returns the collector already registered under
// its name (several Apps in one test process share the default registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// GenerationStarted implements hub.Metrics.
func (m *liveMetrics) GenerationStarted(string) { m.active.Inc() }

// GenerationFinished implements hub.Metrics.
func (m *liveMetrics) GenerationFinished(model, status, upstreamKind string, ttft time.Duration, tokens int, streaming time.Duration) {
	m.active.Dec()
	m.finished.WithLabelValues(model, status).Inc()
	if upstreamKind != "" {
		m.upstreamErrs.WithLabelValues(model, upstreamKind).Inc()
	}
	if tokens == 0 {
		return
	}
	m.ttft.WithLabelValues(model).Observe(ttft.Seconds())
	if tokens > 1 && streaming > 0 {
		m.tokensPerSec.WithLabelValues(model).Observe(float64(tokens-1) / streaming.Seconds())
	}
}

// DeltaSent implements hub.Metrics.
func (m *liveMetrics) DeltaSent(n int) {
	m.deltaFrames.Inc()
	m.deltas.Add(float64(n))
}

// ConnectionOpened implements ws.Metrics.
func (m *liveMetrics) ConnectionOpened() { m.connections.Inc() }

// ConnectionClosed implements ws.Metrics.
func (m *liveMetrics) ConnectionClosed() { m.connections.Dec() }

// ConnectionRefused implements ws.Metrics.
func (m *liveMetrics) ConnectionRefused() { m.connRefused.Inc() }

// Values of chatd_slow_client_disconnects_total's transport label.
const (
	transportWebSocket = "websocket"
	transportSSE       = "sse"
)

// SlowClientDisconnected implements ws.Metrics.
func (m *liveMetrics) SlowClientDisconnected(reason string) {
	m.slowClients.WithLabelValues(transportWebSocket, reason).Inc()
}

// sse returns the SSE handler's metrics.
func (m *liveMetrics) sse() sse.Metrics { return sseMetrics{m} }

// sseMetrics counts what the SSE handler reports, labelled sse.
type sseMetrics struct{ m *liveMetrics }

// SlowClientDisconnected implements sse.Metrics.
func (s sseMetrics) SlowClientDisconnected(reason string) {
	s.m.slowClients.WithLabelValues(transportSSE, reason).Inc()
}

// Flushed implements batch.Metrics.
func (m *liveMetrics) Flushed(_ int, latency time.Duration, err error) {
	m.flushLatency.Observe(latency.Seconds())
	if err != nil {
		m.flushFails.Inc()
	}
}

// BusCallFailed implements hub.BusMetrics.
func (m *liveMetrics) BusCallFailed(call string) { m.busFailures.WithLabelValues(call).Inc() }

// AnswerTakenOver implements hub.BusMetrics.
func (m *liveMetrics) AnswerTakenOver() { m.takenOver.Inc() }

// AnswerSwept implements hub.BusMetrics.
func (m *liveMetrics) AnswerSwept() { m.swept.Inc() }

// MirrorsChanged implements hub.BusMetrics.
func (m *liveMetrics) MirrorsChanged(delta int) { m.mirrored.Add(float64(delta)) }

// MirrorLost implements hub.BusMetrics.
func (m *liveMetrics) MirrorLost() { m.mirrorsLost.Inc() }

// MirrorFromStore implements hub.BusMetrics.
func (m *liveMetrics) MirrorFromStore() { m.fromStore.Inc() }
