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
