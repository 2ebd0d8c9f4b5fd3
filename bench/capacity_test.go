package main

import (
	"context"
	"strings"
	"testing"

	"chatd/bench/load"
)

// TestRampReportsBrokenRuns: a capacity run whose answers did not all
// arrive whole is a problem of the report, for a baseline as for chatd, at
// any level; the ramp reported none before (its verdict only said "over").
func TestRampReportsBrokenRuns(t *testing.T) {
	t.Parallel()
	c := smokeConfig()
	c.capacityLevels = []int{4, 8}
	for _, broken := range targets {
		t.Run(broken, func(t *testing.T) {
			t.Parallel()
			run := func(_ context.Context, rs runSpec) (sample, error) {
				res := load.Result{Target: rs.target, Streams: rs.streams, Expected: rs.streams, Answers: rs.streams}
				if rs.target == broken && rs.streams == 8 {
					res.Answers, res.Errors = rs.streams-1, 1
				}
				return sample{res: res}, nil
			}
			var r report
			if err := ramp(context.Background(), run, &r, c); err != nil {
				t.Fatal(err)
			}
			if len(r.problems) != 1 || !strings.Contains(r.problems[0], "capacity 8 streams, "+broken) {
				t.Fatalf("problems %q, want one for the broken %s run at 8 streams", r.problems, broken)
			}
		})
	}
}
