//go:build !linux

package fakeai

import "time"

// MonotonicNanos returns the wall clock in Unix nanoseconds on systems
// without CLOCK_MONOTONIC support here; it is still comparable between
// processes on one host, but jumps when the clock is set.
func MonotonicNanos() int64 {
	return time.Now().UnixNano()
}
