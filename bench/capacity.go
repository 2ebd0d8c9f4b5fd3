package main

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"chatd/bench/load"
)

// capacity ramps the three targets up until chatd's p99 lateness passes the
// limit (or answers fail).
func capacity(ctx context.Context, e *env, r *report, c config) error {
	if err := e.startChatd(ctx, maxOf(c.capacityLevels)); err != nil {
		return err
	}
	return ramp(ctx, e.run, r, c)
}

// runFunc runs one load run (env.run, or a fake in tests).
type runFunc func(context.Context, runSpec) (sample, error)

// ramp runs the three targets at each level, interleaved, until chatd's
// p99 lateness passes the limit both on its own and over the same level's
// upstream-only run (or its answers fail). The second criterion tells the
// server's limit from the machine's: on a shared machine the load
// generator and the fake upstream alone may pass the limit first. A run
// whose answers did not all arrive whole is also a problem of the report,
// as in the other scenarios: the ramp's last level included.
func ramp(ctx context.Context, run runFunc, r *report, c config) error {
	if err := warmUp(ctx, run, targets, runSpec{streams: c.capacityLevels[0], tokens: c.capacityTokens,
		delay: c.capacityDelay, spread: c.capacitySpread}); err != nil {
		return err
	}
	passed := map[string]int{}  // highest level with p99 lateness <= limit
	added := 0                  // chatd's highest level with p99 over upstream's <= limit
	failed := map[string]bool{} // a level failed (absolute limit or broken answers)
	var rows [][]string
	for i, n := range c.capacityLevels {
		got := map[string]sample{}
		for _, t := range rotate(targets, i) {
			s, err := run(ctx, runSpec{target: t, streams: n, tokens: c.capacityTokens, delay: c.capacityDelay, spread: c.capacitySpread})
			if err != nil {
				return err
			}
			noteBroken(r, fmt.Sprintf("capacity %s, %s", streams(n), t), s)
			got[t] = s
		}
		for _, t := range targets {
			s := got[t]
			ok := s.res.OK() && s.res.Lateness.P99 <= c.capacityLimit
			if ok && !failed[t] {
				passed[t] = n
			}
			failed[t] = failed[t] || !ok
			over := s.res.Lateness.P99 - got[load.TargetUpstream].res.Lateness.P99
			overCell := "-"
			if t != load.TargetUpstream {
				overCell = f2(over)
			}
			rows = append(rows, []string{fmt.Sprint(n), t, f2(s.res.Lateness.P50), f2(s.res.Lateness.P99), overCell,
				f2(s.res.Lateness.Max), f2(s.res.TTFT.P99), fmt.Sprintf("%d/%d", s.res.Answers, s.res.Expected),
				f1(s.cpuPercent(s.serverCPU)), f1(s.cpuPerToken(c.capacityTokens)), f2(s.framesPerToken()),
				f1(s.cpuPercent(s.fakeCPU)), f1(s.loadCPU / max(s.loadWall, 0.001) * 100),
				f1(float64(s.serverRSS) / (1 << 20)), f1(s.load1), map[bool]string{true: "ok", false: "**over**"}[ok]})
		}
		cs := got[load.TargetChatd]
		addedOK := cs.res.OK() && cs.res.Lateness.P99-got[load.TargetUpstream].res.Lateness.P99 <= c.capacityLimit
		if addedOK && added == i0(c, i) {
			added = n
		}
		if failed[load.TargetChatd] && !addedOK {
			break
		}
	}
	last := c.capacityLevels[len(c.capacityLevels)-1]
	ceiling := func(n int, stoppedEarly bool) string {
		if !stoppedEarly && n == last {
			return fmt.Sprintf(">= %d (the ramp's end)", n)
		}
		return fmt.Sprint(n)
	}
	r.check("concurrent streams at 50 tokens/s, p99 lateness <= 50 ms", ">= 800",
		fmt.Sprintf("%s (over the upstream-only run's p99: %s; relay: %s; upstream alone: %s)",
			ceiling(passed[load.TargetChatd], failed[load.TargetChatd]), ceiling(added, false),
			ceiling(passed[load.TargetRelay], failed[load.TargetRelay]), ceiling(passed[load.TargetUpstream], failed[load.TargetUpstream])),
		passed[load.TargetChatd] >= 800)
	r.section("2. Capacity", fmt.Sprintf(`
Ramp: N streams of %d tokens at %.0f tokens/s (%s apart), started over %s; at
each level the three targets run once, in rotating order, until chatd's p99
lateness passes %.0f ms both on its own and over the upstream-only run of the
same level (or an answer fails). "over A" is chatd's (or the relay's) p99 minus
the upstream-only run's: what the server adds, as opposed to what the load
generator and the fake upstream cost a machine this busy. CPU %% is the
server's CPU time over the window it was read in (200%% = both cores): from
the start mark to the end reading, the wait for the servers to be quiet
after the last answer included; CPU/token in
microseconds per token produced upstream; frames/token is the delta frames a
tab received per token (below 1 when the server coalesces); the fake upstream's CPU over the
same window and the load generator's over its whole life (setup included) show
how much of the two cores the other processes of the benchmark take; RSS after
the run; load is the machine's 1-minute load average when the run started.

%s
Highest level within %.0f ms: chatd %s, chatd over the upstream-only run %s,
relay %s, upstream alone %s.`, c.capacityTokens, float64(time.Second)/float64(c.capacityDelay), c.capacityDelay,
		c.capacitySpread, c.capacityLimit,
		table([]string{"streams", "target", "lateness p50", "p99", "p99 over A", "max", "TTFT p99", "answers", "CPU %", "CPU µs/token", "frames/token", "fake upstream CPU %", "loadgen CPU %", "RSS MiB", "load", ""}, rows),
		c.capacityLimit, ceiling(passed[load.TargetChatd], failed[load.TargetChatd]), ceiling(added, false),
		ceiling(passed[load.TargetRelay], failed[load.TargetRelay]), ceiling(passed[load.TargetUpstream], failed[load.TargetUpstream])))
	return nil
}

// warmTokens is the most tokens per answer of a warm-up run: enough for
// every connection to the upstream to be dialled and the heaps to grow.
const warmTokens = 100

// warmUp runs each of ts once at spec's load (the target set, at most
// warmTokens tokens, no profile or allocation counters) and drops what it
// measured. Each scenario starts a fresh chatd, while the relay has served
// the scenarios before it (a warm pool of upstream connections, a grown
// heap): without it the first round compares a cold chatd with a warm
// relay (the burst's TTFT p50 for chatd 97 ms in round 0, about 40 after).
func warmUp(ctx context.Context, run runFunc, ts []string, spec runSpec) error {
	for _, t := range ts {
		rs := spec
		rs.target, rs.tokens = t, min(spec.tokens, warmTokens)
		if _, err := run(ctx, rs); err != nil {
			return fmt.Errorf("warm-up, %s: %w", t, err)
		}
	}
	return nil
}

// i0 is the level before index i (0 for the first), so that "added" only
// grows through consecutive passing levels.
func i0(c config, i int) int {
	if i == 0 {
		return 0
	}
	return c.capacityLevels[i-1]
}

// cpuPerToken compares the server CPU time per token of chatd and the relay,
// interleaved; the first run of each is profiled, and each server's
// allocation profile (every allocation since it started, sampled) is saved
// at the end.
func cpuPerToken(ctx context.Context, e *env, r *report, c config) error {
	if err := e.startChatd(ctx, c.cpuStreams); err != nil {
		return err
	}
	profile := filepath.Join(e.dir, "chatd-cpu.pprof")
	got, err := cpuRuns(ctx, e.run, r, c, e.dir)
	if err != nil {
		return err
	}
	for _, t := range []string{load.TargetRelay, load.TargetChatd} {
		if err := saveProfile(ctx, e.pprofAddr(t), "allocs", filepath.Join(e.dir, t+"-allocs.pprof")); err != nil {
			r.problem("allocation profile of %s: %v", t, err)
		}
	}
	per := func(t string) float64 {
		return medianOf(got[t], func(s sample) float64 { return s.cpuPerToken(c.cpuTokens) })
	}
	ratio := cpuChecks(r, c, got, per)
	top, err := pprofTop(ctx, e.bins.chatd, profile, 25)
	if err != nil {
		r.problem("CPU profile: %v", err)
	}
	topCum, _ := pprofTop(ctx, e.bins.chatd, profile, 25, "-cum")
	r.section("2b. CPU per token", fmt.Sprintf(`
%s x %d tokens at %.0f tokens/s, %d rounds, relay and chatd interleaved.
Server CPU time (from /proc, between the load generator's start and end marks)
per token produced upstream, median over rounds; the ratios (CPU and
allocations) are taken round by round.
Allocations are the server's heap allocations over the same window (MemStats
Mallocs and TotalAlloc through pprof): unlike CPU time on a shared machine,
they do not depend on the neighbours. Frames/token is the delta frames a tab
received per token (below 1 when the server coalesces).

%s
The first chatd run's CPU profile (saved as %s, with relay-cpu.pprof beside it), by
flat time, then by cumulative time:

%s
%s
`, streams(c.cpuStreams), c.cpuTokens, float64(time.Second)/float64(c.capacityDelay), c.rounds,
		table([]string{"target", "CPU µs/token", "chatd / relay", "allocations/token", "bytes allocated/token", "frames/token", "fake upstream CPU µs/token"}, [][]string{
			cpuRow(load.TargetRelay, got, c, per, ""),
			cpuRow(load.TargetChatd, got, c, per, times(ratio)),
		}), filepath.Base(profile), codeBlock(top), codeBlock(topCum)))
	return nil
}

// cpuRuns runs the relay and chatd interleaved, c.rounds times each after
// a warm-up; the first recorded run of each saves its CPU profile in dir.
func cpuRuns(ctx context.Context, run runFunc, r *report, c config, dir string) (map[string][]sample, error) {
	ts := []string{load.TargetRelay, load.TargetChatd}
	spec := runSpec{streams: c.cpuStreams, tokens: c.cpuTokens, delay: c.capacityDelay, spread: time.Second}
	if err := warmUp(ctx, run, ts, spec); err != nil {
		return nil, err
	}
	spec.allocs = true
	dur := time.Duration(c.cpuTokens-1)*c.capacityDelay + time.Second
	got := map[string][]sample{}
	for round := range c.rounds {
		for _, t := range rotate(ts, round) {
			rs := spec
			rs.target = t
			if round == 0 {
				rs.profile, rs.profileFor = filepath.Join(dir, t+"-cpu.pprof"), dur
			}
			s, err := run(ctx, rs)
			if err != nil {
				return nil, err
			}
			noteBroken(r, fmt.Sprintf("CPU per token, %s", t), s)
			got[t] = append(got[t], s)
		}
	}
	return got, nil
}

// cpuChecks records the CPU and allocation checks of cpu's runs and
// returns the CPU ratio; per is a target's median CPU per token.
func cpuChecks(r *report, c config, got map[string][]sample, per func(string) float64) float64 {
	cand, base := got[load.TargetChatd], got[load.TargetRelay]
	ratio := pairMedian(cand, base, func(a, b sample) float64 {
		return a.cpuPerToken(c.cpuTokens) / b.cpuPerToken(c.cpuTokens)
	})
	r.checkOver("CPU per token against baseline B", "<= 1.3x", fmt.Sprintf("%s (%s vs %s µs)", times(ratio),
		f1(per(load.TargetChatd)), f1(per(load.TargetRelay))), within(ratio, 1.3), cand, base)
	allocs := func(s sample) float64 { return s.perToken(s.allocs, c.cpuTokens) }
	aRatio := pairMedian(cand, base, func(a, b sample) float64 { return allocs(a) / allocs(b) })
	r.checkOver("allocations per token against baseline B", "<= 1.5x", fmt.Sprintf("%s (%s vs %s)", times(aRatio),
		f1(medianOf(cand, allocs)), f1(medianOf(base, allocs))), within(aRatio, 1.5), cand, base)
	return ratio
}

func cpuRow(t string, got map[string][]sample, c config, per func(string) float64, ratio string) []string {
	return []string{t, f1(per(t)), ratio,
		f1(medianOf(got[t], func(s sample) float64 { return s.perToken(s.allocs, c.cpuTokens) })),
		f1(medianOf(got[t], func(s sample) float64 { return s.perToken(s.allocBytes, c.cpuTokens) })),
		f2(medianOf(got[t], sample.framesPerToken)),
		f1(medianOf(got[t], fakePerToken(c.cpuTokens)))}
}

func fakePerToken(tokens int) func(sample) float64 {
	return func(s sample) float64 { return s.fakeCPU / float64(max(s.res.Expected*tokens, 1)) * 1e6 }
}

func codeBlock(s string) string { return "```\n" + s + "```\n" }

// burst runs N clients x tokens at a rate, all starting at once, on the
// three targets interleaved, and reports the total time.
func burst(ctx context.Context, e *env, r *report, c config) error {
	if err := e.startChatd(ctx, c.burstStreams); err != nil {
		return err
	}
	return burstRuns(ctx, e.run, r, c)
}

// burstRuns is burst's runs (after a warm-up) and report.
func burstRuns(ctx context.Context, run runFunc, r *report, c config) error {
	spec := runSpec{streams: c.burstStreams, tokens: c.burstTokens, delay: c.burstDelay}
	if err := warmUp(ctx, run, targets, spec); err != nil {
		return err
	}
	got := map[string][]sample{}
	for round := range c.rounds {
		for _, t := range rotate(targets, round) {
			rs := spec
			rs.target = t
			s, err := run(ctx, rs)
			if err != nil {
				return err
			}
			noteBroken(r, fmt.Sprintf("burst, %s", t), s)
			got[t] = append(got[t], s)
		}
	}
	ideal := (time.Duration(c.burstTokens) * c.burstDelay).Seconds()
	var rows [][]string
	for _, t := range targets {
		rows = append(rows, []string{t, f2(medianOf(got[t], func(s sample) float64 { return s.res.Wall })),
			f2(medianOf(got[t], func(s sample) float64 { return s.res.TTFT.P99 })),
			f2(medianOf(got[t], func(s sample) float64 { return s.res.Lateness.P99 })),
			f1(medianOf(got[t], func(s sample) float64 { return s.serverCPU }))})
	}
	wall := medianOf(got[load.TargetChatd], func(s sample) float64 { return s.res.Wall })
	limit := ideal * 1.1
	r.checkOver(fmt.Sprintf("%d clients x %d tokens at %.0f tokens/s, total time", c.burstStreams, c.burstTokens, float64(time.Second)/float64(c.burstDelay)),
		fmt.Sprintf("<= %.1f s (ideal %.1f s)", limit, ideal), f2(wall)+" s", wall <= limit, got[load.TargetChatd])
	for _, m := range []struct {
		what  string
		limit float64
		f     func(load.Result) float64
	}{{"TTFT p99", 2, ttftP99}, {"lateness p99", 1.5, lateP99}} {
		ratio := pairMedian(got[load.TargetChatd], got[load.TargetRelay], func(a, b sample) float64 {
			return m.f(a.res) / max(m.f(b.res), 1e-9)
		})
		r.checkOver(fmt.Sprintf("%d clients at the same instant: %s against baseline B", c.burstStreams, m.what),
			fmt.Sprintf("<= %.1fx", m.limit), times(ratio), within(ratio, m.limit), got[load.TargetChatd], got[load.TargetRelay])
	}
	r.section("2c. All at once", fmt.Sprintf(`
%d clients send at the same instant and each receives %d tokens at %.0f tokens/s
(ideal total %.1f s). Total time is from the first prompt to the last answer's
end; median over %d interleaved rounds.

%s
Lateness by when the fake upstream stamped the token (ms after the first
prompt): p50 / p99 in ms, each the median over the rounds that had tokens
then. It tells the answers' start (the sends, the upstream requests) from
their steady state.

%s`, c.burstStreams, c.burstTokens, float64(time.Second)/float64(c.burstDelay), ideal, c.rounds,
		table([]string{"target", "total s", "TTFT p99 ms", "lateness p99 ms", "server CPU s"}, rows),
		table(append([]string{"stamped (ms)"}, targets...), latenessWindowRows(got))))
	return nil
}

// latenessWindowRows is a row per lateness window (load.Result's
// LatenessByTime) with each target's p50 / p99, medians over its samples.
func latenessWindowRows(got map[string][]sample) [][]string {
	type key struct{ from, to int64 }
	var keys []key
	byTarget := map[string]map[key][]load.Window{}
	for _, t := range targets {
		byTarget[t] = map[key][]load.Window{}
		for _, s := range got[t] {
			for _, w := range s.res.LatenessByTime {
				k := key{w.FromMs, w.ToMs}
				if !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
				byTarget[t][k] = append(byTarget[t][k], w)
			}
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.from, b.from) })
	var rows [][]string
	for _, k := range keys {
		row := []string{fmt.Sprintf("%d-%d", k.from, k.to)}
		for _, t := range targets {
			ws := byTarget[t][k]
			if len(ws) == 0 {
				row = append(row, "")
				continue
			}
			row = append(row, f2(medianOf(ws, func(w load.Window) float64 { return w.P50 }))+" / "+
				f2(medianOf(ws, func(w load.Window) float64 { return w.P99 })))
		}
		rows = append(rows, row)
	}
	return rows
}
