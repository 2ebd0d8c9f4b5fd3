package hub

import (
	"fmt"
	"maps"
	"sync"
	"testing"
)

// busMetricsRecorder is a Metrics that also counts the bus's work
// (BusMetrics), for the cluster tests.
type busMetricsRecorder struct {
	nopMetrics

	mu        sync.Mutex
	failed    map[string]int
	takenOver int
	swept     int
	mirrors   int
	lost      int
	fromStore int
	wake      chan struct{} // buffered (1): a count changed
}

func newBusMetricsRecorder() *busMetricsRecorder {
	return &busMetricsRecorder{failed: make(map[string]int), wake: make(chan struct{}, 1)}
}

func (r *busMetricsRecorder) change(fn func()) {
	r.mu.Lock()
	fn()
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *busMetricsRecorder) BusCallFailed(call string) { r.change(func() { r.failed[call]++ }) }
func (r *busMetricsRecorder) AnswerTakenOver()          { r.change(func() { r.takenOver++ }) }
func (r *busMetricsRecorder) AnswerSwept()              { r.change(func() { r.swept++ }) }
func (r *busMetricsRecorder) MirrorsChanged(delta int)  { r.change(func() { r.mirrors += delta }) }
func (r *busMetricsRecorder) MirrorLost()               { r.change(func() { r.lost++ }) }
func (r *busMetricsRecorder) MirrorFromStore()          { r.change(func() { r.fromStore++ }) }

// busCounts is a copy of a recorder's counts.
type busCounts struct {
	failed                                     map[string]int
	takenOver, swept, mirrors, lost, fromStore int
}

func (r *busMetricsRecorder) counts() busCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return busCounts{failed: maps.Clone(r.failed), takenOver: r.takenOver, swept: r.swept, mirrors: r.mirrors, lost: r.lost,
		fromStore: r.fromStore}
}

// waitFor waits until cond holds for the recorder's counts.
func (r *busMetricsRecorder) waitFor(t *testing.T, what string, cond func(busCounts) bool) {
	t.Helper()
	waitWoken(t, r.wake, func() bool { return cond(r.counts()) }, func() string {
		return fmt.Sprintf("bus metrics: %s did not happen; counts %+v", what, r.counts())
	})
}

// startMetered starts hubs named names in tc, each with a recorder of its own.
func (tc *testCluster) startMetered(t *testing.T, names ...string) []*busMetricsRecorder {
	t.Helper()
	var recs []*busMetricsRecorder
	for _, name := range names {
		rec := newBusMetricsRecorder()
		tc.hubs = append(tc.hubs, tc.startWith(t, name, nil, func(o *Options) { o.Metrics = rec }))
		recs = append(recs, rec)
	}
	return recs
}
