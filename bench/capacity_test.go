package main

import (
	"context"
	"fmt"
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

// TestChecksOverBrokenRuns: a check computed over a run that did not arrive
// whole is not met and reads "not measured (broken runs)": chatd's run
// here failed early, so its CPU per token (the tokens asked for dividing
// what little CPU it spent) is low and read "met" before; only the
// capacity ramp checked OK(). The same for burst's and latency's checks.
func TestChecksOverBrokenRuns(t *testing.T) {
	t.Parallel()
	c := smokeConfig()
	c.rounds = 3
	broken := func(rs runSpec, round int) sample {
		res := wholeResult(rs.streams, rs.tokens)
		res.Target = rs.target
		s := sample{res: res, serverCPU: 1, allocs: 1000, allocBytes: 1000}
		if rs.target == load.TargetChatd && round == 1 {
			s.res.Answers, s.res.Errors, s.serverCPU, s.allocs = 1, rs.streams-1, 0.01, 10
		}
		return s
	}
	fakeRun := func() runFunc {
		n := map[string]int{}
		return func(_ context.Context, rs runSpec) (sample, error) {
			n[rs.target]++
			return broken(rs, n[rs.target]-1), nil // the warm-up is round -1's
		}
	}
	t.Run("cpu", func(t *testing.T) {
		t.Parallel()
		var r report
		got, err := cpuRuns(context.Background(), fakeRun(), &r, c, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		got[load.TargetChatd] = got[load.TargetChatd][:2] // rounds 0 and 1: the broken one decides the median
		got[load.TargetRelay] = got[load.TargetRelay][:2]
		cpuChecks(&r, c, got, func(string) float64 { return 0 })
		assertNotMeasured(t, r, 2)
	})
	t.Run("burst", func(t *testing.T) {
		t.Parallel()
		var r report
		if err := burstRuns(context.Background(), fakeRun(), &r, c); err != nil {
			t.Fatal(err)
		}
		assertNotMeasured(t, r, 3)
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		got := map[string][]sample{}
		for round := range 3 {
			for _, tg := range targets {
				got[tg] = append(got[tg], broken(runSpec{target: tg, streams: 50, tokens: 10}, round))
			}
		}
		var r report
		latencyChecks(&r, c, 50, got)
		assertNotMeasured(t, r, 3)
	})
}

// assertNotMeasured fails unless r holds n checks, none met, each saying
// that it measured nothing.
func assertNotMeasured(t *testing.T, r report, n int) {
	t.Helper()
	if len(r.checks) != n {
		t.Fatalf("%d checks, want %d: %+v", len(r.checks), n, r.checks)
	}
	md := r.markdown("# test")
	for _, ch := range r.checks {
		if ch.met || !ch.broken {
			t.Errorf("check %q over a broken run: met %v, broken %v", ch.what, ch.met, ch.broken)
		}
	}
	if strings.Count(md, "not measured** (broken runs)") != n {
		t.Errorf("report does not say the checks measured nothing:\n%s", md)
	}
}

// TestAllocationRatioRoundByRound: the allocation ratio against the relay
// is taken round by round and the median of those reported, as the CPU
// ratio and docs/benchmarks.md say; it was the ratio of the two medians
// (here 1.00x where the rounds' ratios are 0.33x, 1.50x and 2.00x).
func TestAllocationRatioRoundByRound(t *testing.T) {
	t.Parallel()
	c := smokeConfig()
	run := func(target string, allocs ...int64) []sample {
		var ss []sample
		for _, a := range allocs {
			res := wholeResult(1, c.cpuTokens)
			res.Target = target
			ss = append(ss, sample{res: res, serverCPU: 1, allocs: a * int64(c.cpuTokens), allocBytes: 1})
		}
		return ss
	}
	got := map[string][]sample{load.TargetChatd: run(load.TargetChatd, 10, 20, 30), load.TargetRelay: run(load.TargetRelay, 30, 10, 20)}
	var r report
	cpuChecks(&r, c, got, func(string) float64 { return 1 })
	for _, ch := range r.checks {
		if strings.HasPrefix(ch.what, "allocations per token") {
			if !strings.HasPrefix(ch.measured, "1.50x") {
				t.Fatalf("allocation check %+v, want 1.50x (the median of the rounds' ratios)", ch)
			}
			return
		}
	}
	t.Fatalf("no allocation check in %+v", r.checks)
}

// TestCapacityCPUPercentWindow: the capacity table's CPU % divides the CPU
// time by the window it was read over (start mark to the end reading, the
// settling after the last answer included), not by the answers' wall time,
// which stops at the last answer's end: 1 s of CPU over 2 s read as 100%.
func TestCapacityCPUPercentWindow(t *testing.T) {
	t.Parallel()
	c := smokeConfig()
	run := func(_ context.Context, rs runSpec) (sample, error) {
		res := wholeResult(rs.streams, rs.tokens)
		res.Target, res.Wall = rs.target, 1
		return sample{res: res, serverCPU: 1, fakeCPU: 0.5, cpuWall: 2}, nil
	}
	var r report
	if err := ramp(context.Background(), run, &r, c); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(r.sections[0], "\n") {
		if !strings.HasPrefix(line, fmt.Sprintf("| %d | chatd |", c.capacityLevels[0])) {
			continue
		}
		cells := strings.Split(line, " | ")
		if cells[8] != "50.0" || cells[11] != "25.0" {
			t.Fatalf("CPU %% %s, fake upstream CPU %% %s, want 50.0 and 25.0: %s", cells[8], cells[11], line)
		}
		return
	}
	t.Fatalf("no chatd row in %s", r.sections[0])
}
