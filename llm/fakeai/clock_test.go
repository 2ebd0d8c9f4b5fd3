//go:build linux

package fakeai

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestMonotonicNanosIsClockMonotonic(t *testing.T) {
	for range 5 {
		var a, b unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &a)
		got := MonotonicNanos()
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &b)
		// Allow 1ms of slack for a descheduled thread between the reads.
		if got < a.Nano()-1e6 || got > b.Nano()+1e6 {
			t.Fatalf("MonotonicNanos() = %d, CLOCK_MONOTONIC between %d and %d", got, a.Nano(), b.Nano())
		}
	}
}

// TestMonoOffset: the offset comes from the tightest reading, not from
// one whose thread was descheduled between its two Go clock reads.
func TestMonoOffset(t *testing.T) {
	const truth = 1_000_000 // CLOCK_MONOTONIC minus the Go clock
	reading := func(before, pauseBefore, pauseAfter int64) [3]int64 {
		// The system clock is read pauseBefore after before, the Go
		// clock again pauseAfter later.
		return [3]int64{before, before + pauseBefore + truth, before + pauseBefore + pauseAfter}
	}
	for _, tc := range []struct {
		name     string
		readings [][3]int64
		want     int64
	}{
		{"one tight reading", [][3]int64{reading(100, 50, 50)}, truth},
		{"descheduled before the system clock, then tight", [][3]int64{reading(100, 3_000_000, 50), reading(4_000_000, 40, 40)}, truth},
		{"descheduled after it, then tight", [][3]int64{reading(100, 50, 3_000_000), reading(4_000_000, 60, 60)}, truth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := 0
			got := monoOffset(len(tc.readings), func() (int64, int64, int64, bool) {
				r := tc.readings[i]
				i++
				return r[0], r[1], r[2], true
			})
			if got != tc.want {
				t.Errorf("monoOffset = %d, want %d", got, tc.want)
			}
		})
	}
	if got := monoOffset(3, func() (int64, int64, int64, bool) { return 0, 0, 0, false }); got != 0 {
		t.Errorf("monoOffset with failing readings = %d, want 0", got)
	}
}
