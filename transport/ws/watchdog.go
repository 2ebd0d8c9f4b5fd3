package ws

import (
	"sync/atomic"
	"time"
)

// watchdog calls fire when one write lasts longer than limit (a peer that
// stopped reading), at the cost of a clock reading and two atomic stores
// per write. Resetting and stopping a timer around every write (one frame
// per token, hundreds of sockets) showed in the CPU profile; instead the
// timer is armed by the first write and, when it goes off, either finds
// the write in progress older than limit (fire), finds a younger one (it
// waits for the rest of that one's limit), or finds none (it stays off
// until the next write arms it). A socket written to without a pause thus
// costs one timer expiry per limit, not two timer operations per frame.
//
// One goroutine (the writer) calls start and done; fire runs on the
// timer's goroutine.
type watchdog struct {
	limit time.Duration
	base  time.Time    // since counts from here (monotonic)
	since atomic.Int64 // when the write in progress began: ns after base, plus 1; 0 when none
	armed atomic.Bool  // the timer is set (or its check is running)
	timer *time.Timer
	fire  func()
}

func newWatchdog(limit time.Duration, fire func()) *watchdog {
	w := &watchdog{limit: limit, base: time.Now(), fire: fire}
	w.timer = time.AfterFunc(limit, w.check)
	w.timer.Stop()
	return w
}

func (w *watchdog) now() int64 { return int64(time.Since(w.base)) + 1 }

// start marks the beginning of a write.
func (w *watchdog) start() {
	w.since.Store(w.now())
	// A load first: while the timer is armed (a socket written to without
	// a pause) a write costs no compare-and-swap. check stores false before
	// it loads since, and start stores since before it loads armed, so one
	// of the two sees the other (see check).
	if !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		w.timer.Reset(w.limit)
	}
}

// done marks the end of the write.
func (w *watchdog) done() { w.since.Store(0) }

// inFlight reports whether a write is in progress, and since how long.
func (w *watchdog) inFlight() (time.Duration, bool) {
	s := w.since.Load()
	if s == 0 {
		return 0, false
	}
	return time.Duration(w.now() - s), true
}

// stop releases the timer; a write after stop is not watched.
func (w *watchdog) stop() {
	w.armed.Store(true) // start no longer arms it
	w.timer.Stop()
}

// check runs when the timer goes off.
func (w *watchdog) check() {
	for {
		if s := w.since.Load(); s != 0 {
			if left := w.limit - time.Duration(w.now()-s); left > 0 {
				w.timer.Reset(left)
				return
			}
			w.fire()
			return
		}
		w.armed.Store(false)
		// A write that began before the store above saw the timer armed
		// and left it alone: keep watching it.
		if w.since.Load() == 0 || !w.armed.CompareAndSwap(false, true) {
			return
		}
	}
}
