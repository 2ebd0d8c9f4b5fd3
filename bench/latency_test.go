package main

import (
	"slices"
	"testing"

	"chatd/bench/load"
)

// TestLatencyP99Cells: a p99 over fewer than 100 samples per run is the
// largest sample (nearest rank), and its cell says "max of N" with the
// fewest samples a run had; from 100 samples it is a plain p99.
func TestLatencyP99Cells(t *testing.T) {
	t.Parallel()
	run := func(ttftN, lateN int, ttft, late float64) sample {
		return sample{res: load.Result{TTFT: load.Summary{N: ttftN, P99: ttft}, Lateness: load.Summary{N: lateN, P99: late}}}
	}
	tests := []struct {
		name        string
		chatd, base []sample
		row         []string // latencyRow's TTFT and lateness p99 of chatd
		added       []string // addedRow's TTFT p99 and lateness p99 vs A and B
	}{
		{name: "one stream: 12 answers, 300 tokens",
			chatd: []sample{run(12, 300, 5, 2), run(13, 300, 7, 3), run(12, 300, 6, 4)},
			base:  []sample{run(12, 300, 4, 1), run(12, 300, 4, 1), run(12, 300, 4, 1)},
			row:   []string{"6.00 (max of 12)", "3.00"},
			added: []string{"2.00 (max of 12)", "2.00 (max of 12)", "2.00", "2.00"}},
		{name: "fifty streams: 100 answers",
			chatd: []sample{run(100, 2500, 5, 2)}, base: []sample{run(100, 2500, 4, 1)},
			row:   []string{"5.00", "2.00"},
			added: []string{"1.00", "1.00", "1.00", "1.00"}},
		{name: "fewer tokens than 100 on one side",
			chatd: []sample{run(400, 99, 5, 2)}, base: []sample{run(400, 500, 4, 1)},
			row:   []string{"5.00", "2.00 (max of 99)"},
			added: []string{"1.00", "1.00", "1.00 (max of 99)", "1.00 (max of 99)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			row := latencyRow(1, load.TargetChatd, tt.chatd)
			if got := []string{row[4], row[8]}; !slices.Equal(got, tt.row) {
				t.Errorf("latencyRow p99 cells %q, want %q", got, tt.row)
			}
			added := addedRow(1, map[string][]sample{load.TargetChatd: tt.chatd, load.TargetUpstream: tt.base, load.TargetRelay: tt.base})
			if got := added[3:]; !slices.Equal(got, tt.added) {
				t.Errorf("addedRow p99 cells %q, want %q", got, tt.added)
			}
		})
	}
}
