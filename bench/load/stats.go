package load

import (
	"cmp"
	"math"
	"slices"
)

// Summary describes a set of durations in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Summarize sorts samples (nanoseconds) in place and summarizes them with
// nearest-rank percentiles. An empty set gives a zero Summary.
func Summarize(samples []int64) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, v := range samples {
		sum += float64(v)
	}
	return Summary{
		N:    len(samples),
		P50:  ms(Percentile(samples, 50)),
		P90:  ms(Percentile(samples, 90)),
		P99:  ms(Percentile(samples, 99)),
		Max:  ms(samples[len(samples)-1]),
		Mean: sum / float64(len(samples)) / 1e6,
	}
}

// Percentile returns the nearest-rank p-th percentile of sorted samples
// (0 when there are none).
func Percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// Window is a Summary of the tokens stamped from FromMs to ToMs after a
// run's first prompt.
type Window struct {
	FromMs int64 `json:"fromMs"`
	ToMs   int64 `json:"toMs"`
	Summary
}

// windowEdges are the windows' bounds in ms for a run's first second; after
// it, every window is a second long.
var windowEdges = []int64{0, 100, 250, 500, 1000}

// windowOf is the window [from, to) that ms after the first prompt falls in.
func windowOf(ms int64) (from, to int64) {
	for i := 1; i < len(windowEdges); i++ {
		if ms < windowEdges[i] {
			return windowEdges[i-1], windowEdges[i]
		}
	}
	from = ms / 1000 * 1000
	return from, from + 1000
}

// latenessByTime summarizes the lateness of all's tokens by the window
// their stamp falls in (a stamp before t0, the first prompt, counts in the
// first), in order; windows without tokens are left out.
func latenessByTime(all timings, t0 int64) []Window {
	byFrom := map[int64][]int64{}
	var out []Window
	for i, st := range all.stamps {
		from, to := windowOf(max(st-t0, 0) / 1e6)
		if _, ok := byFrom[from]; !ok {
			out = append(out, Window{FromMs: from, ToMs: to})
		}
		byFrom[from] = append(byFrom[from], all.lateness[i])
	}
	slices.SortFunc(out, func(a, b Window) int { return cmp.Compare(a.FromMs, b.FromMs) })
	for i := range out {
		out[i].Summary = Summarize(byFrom[out[i].FromMs])
	}
	return out
}
