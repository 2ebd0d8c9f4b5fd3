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

// TestWarmUpNotRecorded: burst, cpu and capacity run every target once at
// the scenario's concurrency before their first recorded round, and that
// run is not recorded: each scenario starts a fresh chatd while the relay
// stays warm, and round 0 compared a cold chatd with it. The warm-up runs
// here are broken and slow; none of it may reach the report.
func TestWarmUpNotRecorded(t *testing.T) {
	t.Parallel()
	c := smokeConfig()
	c.rounds = 2
	cases := []struct {
		name    string
		ts      []string
		streams int
		run     func(context.Context, runFunc, *report) error
	}{
		{"burst", targets, c.burstStreams, func(ctx context.Context, run runFunc, r *report) error { return burstRuns(ctx, run, r, c) }},
		{"cpu", []string{load.TargetRelay, load.TargetChatd}, c.cpuStreams, func(ctx context.Context, run runFunc, r *report) error {
			_, err := cpuRuns(ctx, run, r, c, t.TempDir())
			return err
		}},
		{"capacity", targets, c.capacityLevels[0], func(ctx context.Context, run runFunc, r *report) error { return ramp(ctx, run, r, c) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runs := map[string]int{}
			var calls int
			run := func(_ context.Context, rs runSpec) (sample, error) {
				calls++
				runs[rs.target]++
				res := wholeResult(rs.streams, rs.tokens)
				res.Target = rs.target
				res.Wall = 0.1
				if runs[rs.target] == 1 { // the warm-up: broken, slow, profiled would be wrong
					if calls > len(tc.ts) || rs.streams != tc.streams || rs.profile != "" || rs.allocs {
						t.Errorf("first run of %s (call %d): %+v, want a warm-up at %d streams before any round", rs.target, calls, rs, tc.streams)
					}
					res.Answers, res.Errors, res.Wall = res.Answers-1, 1, 1000
				}
				return sample{res: res}, nil
			}
			var r report
			if err := tc.run(context.Background(), run, &r); err != nil {
				t.Fatal(err)
			}
			for _, tg := range tc.ts {
				if runs[tg] != c.rounds+1 && tc.name != "capacity" || tc.name == "capacity" && runs[tg] != len(c.capacityLevels)+1 {
					t.Errorf("%s ran %d times", tg, runs[tg])
				}
			}
			if len(r.problems) > 0 {
				t.Errorf("the warm-up was recorded: %q", r.problems)
			}
			for _, ch := range r.checks {
				if strings.Contains(ch.measured, "1000") {
					t.Errorf("the warm-up was recorded: %+v", ch)
				}
			}
		})
	}
}
