package main

import (
	"context"
	"fmt"
	"time"

	"chatd/bench/load"
)

// targets in the order of the issue: baseline A, baseline B, candidate.
var targets = []string{load.TargetUpstream, load.TargetRelay, load.TargetChatd}

// latency measures time to first token and per-token lateness at each
// level of concurrent streams, the three targets interleaved round by
// round. Streams start staggered over one answer's duration and ask for
// their answers one after the other, so about N answers are in flight.
func latency(ctx context.Context, e *env, r *report, c config) error {
	if err := e.startChatd(ctx, maxOf(c.latencyLevels)); err != nil {
		return err
	}
	answerDur := time.Duration(c.latencyTokens-1) * c.latencyDelay
	spec := func(t string, n int) runSpec {
		return runSpec{target: t, streams: n, answers: max(2, c.latencySamples/n), tokens: c.latencyTokens,
			delay: c.latencyDelay, spread: answerDur}
	}
	// Warm up every target (connection pools, the database's caches).
	for _, t := range targets {
		if _, err := e.run(ctx, spec(t, 2)); err != nil {
			return err
		}
	}
	var rows, added [][]string
	for _, n := range c.latencyLevels {
		got := map[string][]sample{}
		for round := range c.rounds {
			for _, t := range rotate(targets, round) {
				s, err := e.run(ctx, spec(t, n))
				if err != nil {
					return err
				}
				noteBroken(r, fmt.Sprintf("latency %s, %s", streams(n), t), s)
				got[t] = append(got[t], s)
			}
		}
		for _, t := range targets {
			rows = append(rows, latencyRow(n, t, got[t]))
		}
		added = append(added, addedRow(n, got))
		latencyChecks(r, c, n, got)
	}
	r.section("1. Added latency", fmt.Sprintf(`
Streams of %d tokens %s apart (%.0f tokens/s), started evenly over one answer's
duration, each asking for max(2, %d/N) answers in turn (about N answers in flight); %d rounds,
targets interleaved (A B C, B C A, ...). Milliseconds; each cell is the median over
rounds of that run's percentile. A = the fake upstream read directly, B = the
minimal relay, C = chatd. A p99 over fewer than 100 samples per run (the
answers' TTFT at few streams) is the largest of them (nearest rank): such a
cell says "max of N", N the samples of a run.

%s
Added by chatd, per round against the same round's baseline, median over rounds
(time to first token p50 and p99; lateness p99):

%s`, c.latencyTokens, c.latencyDelay, float64(time.Second)/float64(c.latencyDelay), c.latencySamples, c.rounds,
		table([]string{"streams", "target", "TTFT p50", "p90", "p99", "max", "lateness p50", "p90", "p99", "max", "tokens/run"}, rows),
		table([]string{"streams", "TTFT p50 vs A", "vs B", "TTFT p99 vs A", "vs B", "lateness p99 vs A", "vs B"}, added)))
	return nil
}

func latencyRow(n int, t string, ss []sample) []string {
	med := func(f func(load.Result) float64) float64 {
		return medianOf(ss, func(s sample) float64 { return f(s.res) })
	}
	m := func(f func(load.Result) float64) string { return f2(med(f)) }
	return []string{fmt.Sprint(n), t,
		m(func(r load.Result) float64 { return r.TTFT.P50 }), m(func(r load.Result) float64 { return r.TTFT.P90 }),
		p99Cell(med(ttftP99), fewest(ss, ttftN)), m(func(r load.Result) float64 { return r.TTFT.Max }),
		m(func(r load.Result) float64 { return r.Lateness.P50 }), m(func(r load.Result) float64 { return r.Lateness.P90 }),
		p99Cell(med(lateP99), fewest(ss, lateN)), m(func(r load.Result) float64 { return r.Lateness.Max }),
		m(func(r load.Result) float64 { return float64(r.Tokens) })}
}

// p99Cell formats a p99 taken over n samples per run: below 100 a
// nearest-rank p99 is the largest sample, and the cell says so.
func p99Cell(v float64, n int) string {
	if n < 100 {
		return fmt.Sprintf("%s (max of %d)", f2(v), n)
	}
	return f2(v)
}

// fewest is the fewest samples (n of a Summary) a run of ss had.
func fewest(ss []sample, n func(load.Result) int) int {
	if len(ss) == 0 {
		return 0
	}
	least := n(ss[0].res)
	for _, s := range ss[1:] {
		least = min(least, n(s.res))
	}
	return least
}

// addedMs is the median over rounds of chatd's value minus the baseline's.
func addedMs(got map[string][]sample, base string, f func(load.Result) float64) float64 {
	return pairMedian(got[load.TargetChatd], got[base], func(c, b sample) float64 { return f(c.res) - f(b.res) })
}

var (
	ttftP50 = func(r load.Result) float64 { return r.TTFT.P50 }
	ttftP99 = func(r load.Result) float64 { return r.TTFT.P99 }
	lateP99 = func(r load.Result) float64 { return r.Lateness.P99 }
	ttftN   = func(r load.Result) int { return r.TTFT.N }
	lateN   = func(r load.Result) int { return r.Lateness.N }
)

func addedRow(n int, got map[string][]sample) []string {
	row := []string{fmt.Sprint(n)}
	for _, f := range []struct {
		v   func(load.Result) float64
		p99 bool
		n   func(load.Result) int
	}{{ttftP50, false, ttftN}, {ttftP99, true, ttftN}, {lateP99, true, lateN}} {
		for _, base := range []string{load.TargetUpstream, load.TargetRelay} {
			v := addedMs(got, base, f.v)
			if !f.p99 {
				row = append(row, f2(v))
				continue
			}
			row = append(row, p99Cell(v, min(fewest(got[load.TargetChatd], f.n), fewest(got[base], f.n))))
		}
	}
	return row
}

func latencyChecks(r *report, c config, n int, got map[string][]sample) {
	p50 := addedMs(got, load.TargetUpstream, ttftP50)
	overA := [][]sample{got[load.TargetChatd], got[load.TargetUpstream]}
	switch n {
	case 1:
		r.checkOver("added TTFT p50, "+streams(n), "<= 2 ms", f2(p50)+" ms", p50 <= 2, overA...)
	case 50:
		r.checkOver("added TTFT p50, 50 streams", "<= 5 ms", f2(p50)+" ms", p50 <= 5, overA...)
		p99 := addedMs(got, load.TargetUpstream, ttftP99)
		r.checkOver("added TTFT p99, 50 streams", "<= 15 ms", f2(p99)+" ms", p99 <= 15, overA...)
	}
	// Issue 12's targets, against the relay (B) in the same run: a token
	// waits for no timer when nothing is queued.
	limit := 5.0
	if n > 50 {
		limit = 30
	}
	late := addedMs(got, load.TargetRelay, lateP99)
	abs := medianOf(got[load.TargetChatd], func(s sample) float64 { return s.res.Lateness.P99 })
	r.checkOver("added lateness p99 over the relay, "+streams(n), fmt.Sprintf("<= %.0f ms", limit),
		fmt.Sprintf("%s ms (chatd alone %s ms)", f2(late), f2(abs)), late <= limit, got[load.TargetChatd], got[load.TargetRelay])
}

// noteBroken reports a run whose answers did not all arrive whole (or
// whose tabs received fewer tokens than were streamed), and every counter
// the run could not read.
func noteBroken(r *report, what string, s sample) {
	if !s.res.OK() {
		r.problem("%s: %d/%d answers, %d/%d tokens, %d errors, %d mismatched tabs %v", what, s.res.Answers, s.res.Expected,
			s.res.Tokens, s.res.ExpectedTokens, s.res.Errors, s.res.Mismatched, s.res.FirstErrors)
	}
	for _, f := range s.faults {
		r.problem("%s: %s", what, f)
	}
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
