package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"chatd/bench/load"
)

// fanout runs one generation per user followed by 1, 2, 4, 8 tabs of that
// user, interleaved, and reports the server CPU each extra tab adds per
// token; then compares the tabs' lateness with all tabs reading and with
// one tab per user that stops reading.
func fanout(ctx context.Context, e *env, r *report, c config) error {
	if err := e.startChatd(ctx, c.fanUsers); err != nil {
		return err
	}
	spec := func(tabs int, stall bool) runSpec {
		return runSpec{target: load.TargetChatd, streams: c.fanUsers, tokens: c.fanTokens, delay: c.fanDelay,
			spread: 500 * time.Millisecond, tabs: tabs, stall: stall}
	}
	got := map[int][]sample{}
	for round := range c.rounds {
		for _, tabs := range rotate(c.fanTabs, round) {
			s, err := e.run(ctx, spec(tabs, false))
			if err != nil {
				return err
			}
			noteBroken(r, fmt.Sprintf("fan-out %d tabs", tabs), s)
			got[tabs] = append(got[tabs], s)
		}
	}
	one := got[c.fanTabs[0]]
	perTok := func(s sample) float64 { return s.cpuPerToken(c.fanTokens) }
	var rows [][]string
	for _, tabs := range c.fanTabs {
		extra := pairMedian(got[tabs], one, func(a, b sample) float64 {
			return (perTok(a) - perTok(b)) / float64(max(tabs-c.fanTabs[0], 1))
		})
		mism := 0
		for _, s := range got[tabs] {
			mism += s.res.Mismatched
		}
		rows = append(rows, []string{fmt.Sprint(tabs), f2(medianOf(got[tabs], perTok)),
			map[bool]string{true: f2(extra), false: "-"}[tabs > c.fanTabs[0]],
			map[bool]string{true: fmt.Sprintf("%.0f%%", extra/medianOf(one, perTok)*100), false: "-"}[tabs > c.fanTabs[0]],
			f2(medianOf(got[tabs], func(s sample) float64 { return s.res.Lateness.P99 })),
			fmt.Sprintf("%d of %d", mism, (tabs-1)*c.fanUsers*len(got[tabs]))})
	}
	most := c.fanTabs[len(c.fanTabs)-1]
	extra := pairMedian(got[most], one, func(a, b sample) float64 { return (perTok(a) - perTok(b)) / float64(max(most-c.fanTabs[0], 1)) })
	r.checkOver(fmt.Sprintf("extra CPU per tab per token (%d tabs)", most), "well under one tab's cost (encoded once)",
		fmt.Sprintf("%s µs vs %s µs for the first tab", f2(extra), f2(medianOf(one, perTok))), extra < medianOf(one, perTok)/2,
		got[most], one)
	stall, err := stalled(ctx, e, r, c, most, spec)
	if err != nil {
		return err
	}
	r.section("5. Fan-out", fmt.Sprintf(`
%d users each run one generation of %d tokens at %.0f tokens/s, followed by
1, 2, 4 or 8 of their tabs (the first sends, the others subscribe first); %d
rounds with the tab counts interleaved. Server CPU per token produced upstream
(µs), and the extra CPU each tab beyond the first adds per token, round by
round against the one-tab run. "Different sequences" counts follower tabs
whose delta frames (seq and text, in order) differed from the sending tab's.

%s
%s`, c.fanUsers, c.fanTokens, float64(time.Second)/float64(c.fanDelay), c.rounds,
		table([]string{"tabs", "CPU µs/token", "extra µs/token per tab", "extra / first tab", "lateness p99 ms", "different sequences"}, rows), stall))
	return nil
}

// stalled compares the reading tabs' lateness with every tab reading and
// with the last tab of each user not reading (its socket buffer 4 KiB), in
// c.fanStallPairs interleaved pairs of runs (at least c.rounds). The two
// runs have the same tabs and differ only in whether one of them reads:
// set against fewer tabs, the stalled run would also carry the cost of one
// more tab, since at these answer lengths the kernel's socket buffers take
// every frame of a stalled tab (docs/benchmarks.md, "The stalled-tab
// check's noise").
func stalled(ctx context.Context, e *env, r *report, c config, tabs int, spec func(int, bool) runSpec) (string, error) {
	var all, one []sample
	pairs := max(c.rounds, c.fanStallPairs)
	for round := range pairs {
		for _, st := range rotate([]bool{false, true}, round) {
			s, err := e.run(ctx, spec(tabs, st))
			if err != nil {
				return "", err
			}
			noteBroken(r, fmt.Sprintf("fan-out %d tabs, stall %v", tabs, st), s)
			if st {
				one = append(one, s)
			} else {
				all = append(all, s)
			}
		}
	}
	p99 := func(s sample) float64 { return s.res.Lateness.P99 }
	p50 := func(s sample) float64 { return s.res.Lateness.P50 }
	ratios := make([]float64, len(one))
	perPair := make([]string, len(one))
	for i := range one {
		ratios[i] = p99(one[i]) / p99(all[i])
		perPair[i] = fmt.Sprintf("x%.2f", ratios[i])
	}
	ratio := median(ratios)
	r.checkOver("one tab stops reading: the others' p99 lateness", "moves <= 10%", fmt.Sprintf("x%.2f", ratio),
		ratio <= 1.10 && ratio >= 0.90, all, one)
	codes := map[int]int{}
	closed, caught, stalledTabs := 0, 0, 0
	for _, s := range one {
		closed += s.res.StalledClosed
		caught += s.res.StalledCaughtUp
		stalledTabs += s.res.StalledTabs
		for k, v := range s.res.StalledCodes {
			codes[k] += v
		}
	}
	return fmt.Sprintf(`Then %d tabs per user, all reading, against the same with the last tab of
every user not reading (4 KiB receive buffer), %d pairs of runs interleaved
(more than the other comparisons' rounds: the p99 compared, about 1.5 ms,
moves by up to a third from run to run); lateness of the reading tabs (ms),
medians over the runs, and the median of the pairs' ratios (each pair's:
%s):

%s
When the stalled tabs read again: %d of %d had been closed by the server (close
codes: %v; 4408 is a full send queue, -1 a socket closed without a close frame,
as after a write timeout), %d were still open and received the whole answer.`, tabs, pairs, strings.Join(perPair, ", "),
		table([]string{"run", "lateness p50", "p99", "p99 ratio (stalled / all reading)"}, [][]string{
			{"all tabs read", f2(medianOf(all, p50)), f2(medianOf(all, p99)), ""},
			{"one tab per user stalls", f2(medianOf(one, p50)), f2(medianOf(one, p99)), fmt.Sprintf("x%.2f", ratio)},
		}), closed, stalledTabs, codes, caught), nil
}
