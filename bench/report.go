package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// report collects the benchmark's Markdown sections and target checks.
type report struct {
	sections []string
	checks   []check
	problems []string // the harness found something wrong (failed or broken runs)
}

// check is one target of the issue, measured.
type check struct {
	what, target, measured string
	met                    bool
	// broken: a run behind the measurement did not arrive whole or could
	// not be read (noteBroken lists it), so it measured nothing.
	broken bool
}

func (r *report) section(title, body string) {
	r.sections = append(r.sections, "## "+title+"\n\n"+strings.TrimSpace(body)+"\n")
}

func (r *report) check(what, target, measured string, met bool) {
	r.checks = append(r.checks, check{what: what, target: target, measured: measured, met: met})
}

// checkOver is check for a measurement taken over runs: it is met only
// when every run behind it is whole (see whole); otherwise it reads "not
// measured (broken runs)", as the capacity ramp counts no broken level.
func (r *report) checkOver(what, target, measured string, met bool, runs ...[]sample) {
	ok := whole(runs...)
	r.checks = append(r.checks, check{what, target, measured, met && ok, !ok})
}

// whole reports whether every run arrived whole (load.Result.OK) and had
// every counter read: noteBroken lists none of them.
func whole(runs ...[]sample) bool {
	for _, ss := range runs {
		for _, s := range ss {
			if !s.res.OK() || len(s.faults) > 0 {
				return false
			}
		}
	}
	return true
}

func (r *report) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// markdown is the whole report under header.
func (r *report) markdown(header string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(header) + "\n\n")
	if len(r.checks) > 0 {
		rows := make([][]string, len(r.checks))
		for i, c := range r.checks {
			verdict := map[bool]string{true: "met", false: "**missed**"}[c.met]
			if c.broken {
				verdict = "**not measured** (broken runs)"
			}
			rows[i] = []string{c.what, c.target, c.measured, verdict}
		}
		b.WriteString("## Targets\n\n" + table([]string{"what", "target", "measured (median of rounds)", ""}, rows) + "\n")
	}
	if len(r.problems) > 0 {
		b.WriteString("## Problems found by the harness\n\n")
		for _, p := range r.problems {
			b.WriteString("- " + p + "\n")
		}
		b.WriteString("\n")
	}
	for _, s := range r.sections {
		b.WriteString(s + "\n")
	}
	return b.String()
}

// table renders a Markdown table.
func table(headers []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(headers, " | ") + " |\n|")
	for range headers {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String()
}

// median of vs (0 for none); vs is not modified.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf is the median of f over samples.
func medianOf[T any](samples []T, f func(T) float64) float64 {
	vs := make([]float64, len(samples))
	for i, s := range samples {
		vs[i] = f(s)
	}
	return median(vs)
}

// pairMedian is the median over rounds of f(candidate, baseline), round by round.
func pairMedian(cand, base []sample, f func(c, b sample) float64) float64 {
	var vs []float64
	for i := range min(len(cand), len(base)) {
		vs = append(vs, f(cand[i], base[i]))
	}
	return median(vs)
}

// times formats a ratio; one over a zero measurement (a run too short for
// /proc's 10 ms resolution) is shown as such, and so is a zero one: the
// candidate measured nothing (a counter that read 0).
func times(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "n/a (too short to measure)"
	}
	if v <= 0 {
		return "n/a (nothing measured)"
	}
	return fmt.Sprintf("%.2fx", v)
}

// within reports whether a ratio was measured (neither side zero) and is
// at most limit: a ratio of 0, a candidate that measured nothing, meets
// no bound.
func within(v, limit float64) bool {
	return v > 0 && !math.IsInf(v, 0) && v <= limit
}

// streams is "1 stream" or "n streams".
func streams(n int) string {
	if n == 1 {
		return "1 stream"
	}
	return fmt.Sprintf("%d streams", n)
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// rotate returns xs rotated left by k, so rounds alternate which target goes first.
func rotate[T any](xs []T, k int) []T {
	k %= len(xs)
	return append(slices.Clone(xs[k:]), xs[:k]...)
}
