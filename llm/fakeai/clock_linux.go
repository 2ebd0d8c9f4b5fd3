//go:build linux

package fakeai

import (
	"time"

	"golang.org/x/sys/unix"
)

// The Go runtime's monotonic clock is CLOCK_MONOTONIC on Linux, read
// through the vDSO; one real clock_gettime at start gives its offset, so
// MonotonicNanos costs no system call.
var (
	monoBase  int64
	monoStart = time.Now()
)

func init() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		monoBase = ts.Nano() - int64(time.Since(monoStart))
	}
}

// MonotonicNanos returns CLOCK_MONOTONIC in nanoseconds: the same clock for
// every process on the host, so a load generator can compare a chunk's
// x_fake_ts with its own reading of this function (or of clock_gettime).
func MonotonicNanos() int64 {
	return monoBase + int64(time.Since(monoStart))
}
