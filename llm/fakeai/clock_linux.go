//go:build linux

package fakeai

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// The Go runtime's monotonic clock is CLOCK_MONOTONIC on Linux, read
// through the vDSO; real clock_gettime calls at start give its offset, so
// MonotonicNanos costs no system call.
var (
	monoStart = time.Now()
	monoBase  = monoOffset(offsetTries, func() (before, mono, after int64, ok bool) {
		before = int64(time.Since(monoStart))
		var ts unix.Timespec
		err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		after = int64(time.Since(monoStart))
		return before, ts.Nano(), after, err == nil
	})
)

// offsetTries is how many readings monoOffset takes at start.
const offsetTries = 20

// monoOffset returns CLOCK_MONOTONIC minus the Go clock's time since
// monoStart, from the tightest of tries readings (0 if a reading fails).
// Each reading takes the Go clock, CLOCK_MONOTONIC and the Go clock
// again; a thread descheduled between them (a loaded machine, at start)
// brackets the system clock's reading loosely and would put the offset
// off by up to its pause, for the whole process: a tighter reading wins.
func monoOffset(tries int, read func() (before, mono, after int64, ok bool)) int64 {
	width, offset := int64(math.MaxInt64), int64(0)
	for range tries {
		before, mono, after, ok := read()
		if !ok {
			return 0
		}
		if after-before < width {
			width, offset = after-before, mono-(before+(after-before)/2)
		}
	}
	return offset
}

// MonotonicNanos returns CLOCK_MONOTONIC in nanoseconds: the same clock for
// every process on the host, so a load generator can compare a chunk's
// x_fake_ts with its own reading of this function (or of clock_gettime).
func MonotonicNanos() int64 {
	return monoBase + int64(time.Since(monoStart))
}
