package app

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBusMetrics: an instance alone exports no chatd_bus_ metric; in a
// cluster they count what the hub reports, and chatd_bus_up follows the
// bus's health.
func TestBusMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := newLiveMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if names := busMetricNames(t, reg); len(names) != 0 {
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
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "chatd_slow_client_disconnects_total" {
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
	want := map[string]float64{
		"reason=queue_full,transport=websocket": 1, "reason=write_timeout,transport=websocket": 2,
		"reason=queue_full,transport=sse": 0, "reason=write_timeout,transport=sse": 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("chatd_slow_client_disconnects_total %v, want %v", got, want)
	}
}
