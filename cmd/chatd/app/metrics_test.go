package app

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chatd/persistence"
)

// TestBusMetrics: an instance alone exports no chatd_bus_ metric but the
// sweep's (chatd_bus_answers_swept_total: it sweeps too); in a cluster
// they count what the hub reports, and chatd_bus_up follows the bus's
// health.
func TestBusMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := newLiveMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if names := busMetricNames(t, reg); !slices.Equal(names, []string{"chatd_bus_answers_swept_total"}) {
		t.Fatalf("an instance alone exports %v", names)
	}

	var down atomic.Bool
	if err := m.watchBus(func(context.Context) error {
		if down.Load() {
			return errors.New("bus down")
		}
		return nil
	}, busGauges{instances: func() int { return 3 }, keyConflicts: func() int { return 1 },
		limitFailures: func() int { return 4 }, clockSteps: func() int { return 2 }, eventsDropped: func() int { return 5 }}); err != nil {
		t.Fatal(err)
	}
	m.BusCallFailed("publish answer frame")
	m.BusCallFailed("publish answer frame")
	m.BusCallFailed("release conversation lock")
	m.AnswerTakenOver()
	m.AnswerSwept()
	m.AnswerSwept()
	m.AnswerSwept()
	m.MirrorsChanged(1)
	m.MirrorsChanged(1)
	m.MirrorsChanged(-1)
	m.MirrorLost()
	m.MirrorFromStore()
	m.MirrorFromStore()
	for _, c := range []struct {
		name string
		want float64
	}{
		{"chatd_bus_up", 1},
		{"chatd_bus_instances", 3},
		{"chatd_bus_session_key_conflicts", 1},
		{"chatd_bus_limit_failures_total", 4},
		{"chatd_bus_lease_clock_steps_total", 2},
		{"chatd_bus_events_dropped_total", 5},
		{"chatd_bus_call_failures_total", 3},
		{"chatd_bus_answers_taken_over_total", 1},
		{"chatd_bus_answers_swept_total", 3},
		{"chatd_bus_mirrored_answers", 1},
		{"chatd_bus_mirrors_lost_total", 1},
		{"chatd_bus_mirrors_from_store_total", 2},
	} {
		if got := metricValue(t, reg, c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	down.Store(true)
	if got := metricValue(t, reg, "chatd_bus_up"); got != 0 {
		t.Errorf("chatd_bus_up with the bus down = %v", got)
	}
}

// TestUpstreamErrorsMetric: chatd_upstream_errors_total counts the
// answers the model provider failed, by its error's kind, and not one
// that the server's own duration limit (CHATD_MAX_ANSWER_DURATION)
// stopped, which ends error/timeout and counts in chatd_generations_total
// as any error does. (One whose final write failed, error/unavailable, is
// hub's TestFinishedUpstreamKind.) Before, every answer ending in error
// counted there under its done's code: the limit's stop as an upstream
// timeout, a full disk as kind unavailable.
func TestUpstreamErrorsMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Metrics.Registerer, c.Metrics.Gatherer = reg, reg
		// Long enough that the failing answer's round trip to the fake
		// upstream never meets it on a loaded machine (2 s left a stall of
		// a second or two under -race little room); the long one (100,000
		// tokens 5 ms apart) always does.
		c.Hub.MaxDuration = 5 * time.Second
	}})
	cl := e.dial(t, e.register(t))
	long := cl.start("long [[fake tokens=100000 delay=5ms]]")
	if _, d := answer(t, cl.until(isDone(long.MessageID)), long.MessageID); d.Status != "error" {
		t.Fatalf("answer past the duration limit: %s", d.raw)
	} else if code, _ := d.doneError(); code != "timeout" {
		t.Fatalf("answer past the duration limit: code %q, want timeout", code)
	}
	failed := cl.start("fail [[fake fault=400]]")
	if _, d := answer(t, cl.until(isDone(failed.MessageID)), failed.MessageID); d.Status != "error" {
		t.Fatalf("answer refused upstream: %s", d.raw)
	} else if code, _ := d.doneError(); code != "bad_request" {
		t.Fatalf("answer refused upstream: code %q, want bad_request", code)
	}
	// An answer is counted once its done is sent: read until both are.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for labelled(t, reg, "chatd_generations_total")["model=fake-mini,status=error"] != 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("chatd_generations_total %v, want 2 errors", labelled(t, reg, "chatd_generations_total"))
		case <-time.After(10 * time.Millisecond):
		}
	}
	want := map[string]float64{"kind=bad_request,model=fake-mini": 1}
	if got := labelled(t, reg, "chatd_upstream_errors_total"); !maps.Equal(got, want) {
		t.Fatalf("chatd_upstream_errors_total %v, want %v", got, want)
	}
}

// TestSoloSweepMetric: a single process exports
// chatd_bus_answers_swept_total, and its sweep of answers left streaming
// counts there the row it ends. It was registered with a cluster's bus
// only, so a single process, whose hub sweeps too, never exported it.
func TestSoloSweepMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Metrics.Registerer, c.Metrics.Gatherer, c.Metrics.Token = reg, reg, "metrics-secret"
		c.Hub.SweepInterval, c.Hub.SweepAge = 10*time.Millisecond, time.Nanosecond
	}})
	swept := func() string {
		for line := range strings.Lines(scrapeMetrics(t, e.srv.URL, "metrics-secret")) {
			if v, ok := strings.CutPrefix(line, "chatd_bus_answers_swept_total "); ok {
				return strings.TrimSpace(v)
			}
		}
		return "absent"
	}
	if got := swept(); got != "0" {
		t.Fatalf("chatd_bus_answers_swept_total of a single process: %s, want 0", got)
	}
	row := leaveStreaming(t, e)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for got := swept(); got != "1"; got = swept() {
		select {
		case <-ctx.Done():
			m, err := e.store.Message(context.Background(), row.OwnerID, row.ID)
			t.Fatalf("chatd_bus_answers_swept_total %s after the row left streaming (stored %q, %v), want 1", got, m.Status, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if m, err := e.store.Message(context.Background(), row.OwnerID, row.ID); err != nil || m.Status != persistence.StatusInterrupted {
		t.Fatalf("the swept row: %q, %v; want interrupted", m.Status, err)
	}
}

// leaveStreaming stores, in a new conversation of a new user of e, a
// question and an answer row left streaming that nothing runs.
func leaveStreaming(t *testing.T, e *env) persistence.Message {
	t.Helper()
	u := e.register(t)
	var created struct {
		Conversation persistence.Conversation `json:"conversation"`
	}
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	c := created.Conversation
	q := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "question", Status: persistence.StatusComplete}
	a := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant,
		Model: "fake-mini", Status: persistence.StatusStreaming}
	if err := e.store.InsertMessages(t.Context(), &q, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// busMetricNames lists the chatd_bus_ metrics g exports.
func busMetricNames(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "chatd_bus_") {
			names = append(names, f.GetName())
		}
	}
	return names
}

// metricValue is the sum of the values of the counter or gauge name in g
// (over its labels); it fails the test when g has no such metric.
func metricValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSlowClientMetrics: chatd_slow_client_disconnects_total counts the
// slow clients each transport reports under its transport and reason,
// every pair exported from the start.
func TestSlowClientMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := newLiveMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SlowClientDisconnected("queue_full")
	m.SlowClientDisconnected("write_timeout")
	m.SlowClientDisconnected("write_timeout")
	m.sse().SlowClientDisconnected("write_timeout")
	got := labelled(t, reg, "chatd_slow_client_disconnects_total")
	want := map[string]float64{
		"reason=queue_full,transport=websocket": 1, "reason=write_timeout,transport=websocket": 2,
		"reason=queue_full,transport=sse": 0, "reason=write_timeout,transport=sse": 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("chatd_slow_client_disconnects_total %v, want %v", got, want)
	}
}

// labelled is the values of the counter name in g by its labels
// ("name=value" joined by commas, in the order g gives them); empty when
// g has none of it.
func labelled(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[strings.Join(labels, ",")] = mt.GetCounter().GetValue()
		}
	}
	return got
}
