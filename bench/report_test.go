package main

import (
	"strings"
	"testing"
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
