//go:build linux

package fakeai

import "golang.org/x/sys/unix"

// MonotonicNanos returns CLOCK_MONOTONIC in nanoseconds: the same clock for
// every process on the host, so a load generator can compare a chunk's
// x_fake_ts with its own reading of this function.
func MonotonicNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
