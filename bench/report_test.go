package main

import (
	"slices"
	"strings"
	"testing"

	"chatd/bench/load"
)

func TestStreams(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0 streams", 1: "1 stream", 2: "2 streams", 200: "200 streams"} {
		if got := streams(n); got != want {
			t.Errorf("streams(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLatencyCheckNames: the latency targets name one stream in the
// singular ("1 streams" was printed before).
func TestLatencyCheckNames(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 10} {
		var r report
		latencyChecks(&r, config{}, n, nil)
		for _, c := range r.checks {
			if strings.Contains(c.what, "1 streams") || !strings.Contains(c.what, streams(n)) {
				t.Errorf("check %q for %d streams", c.what, n)
			}
		}
		if len(r.checks) == 0 {
			t.Errorf("no checks for %d streams", n)
		}
	}
}

// TestLatenessWindowRows: one row per window any target had, in order,
// each target's p50 / p99 the median over its samples, blank where it had
// no tokens.
func TestLatenessWindowRows(t *testing.T) {
	t.Parallel()
	win := func(from, to int64, p50, p99 float64) load.Window {
		return load.Window{FromMs: from, ToMs: to, Summary: load.Summary{P50: p50, P99: p99, N: 1}}
	}
	res := func(ws ...load.Window) sample { return sample{res: load.Result{LatenessByTime: ws}} }
	got := latenessWindowRows(map[string][]sample{
		load.TargetRelay: {res(win(0, 100, 1, 2), win(1000, 2000, 1, 3)), res(win(0, 100, 3, 4)), res(win(0, 100, 2, 9))},
		load.TargetChatd: {res(win(100, 250, 5, 6))},
	})
	want := [][]string{
		{"0-100", "", "2.00 / 4.00", ""},
		{"100-250", "", "", "5.00 / 6.00"},
		{"1000-2000", "", "1.00 / 3.00", ""},
	}
	if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("rows %q, want %q", got, want)
	}
}
