package openai

import (
	"context"
	"sync/atomic"
	"time"
)

// streamDeadline ends an attempt whose model does not start answering
// within the first-token timeout, or pauses longer than the idle timeout
// between two chunks that carry text (or reasoning) once text flows. Resetting a timer at every chunk
// (one per token, hundreds of streams) costs a lock and a move in the
// runtime's timer heap; instead each chunk only stores the time it was
// read, and the timer, when it goes off, either finds the last chunk older
// than the idle timeout (the attempt ends) or waits for the rest of the
// timeout counted from that chunk. A stream that keeps flowing thus costs
// one timer expiry per idle timeout, not a timer operation per token.
//
// A chunk and the timer going off at the same moment are decided by
// whichever claims last first (compare-and-swap): a chunk that claims it
// is delivered and the stream goes on (the timer waits again, counted from
// that chunk); a timer that claims it ends the attempt, and the chunk read
// meanwhile is not delivered (it came after the deadline). The attempt
// claims before it delivers, so text is never followed by a timeout that
// counted as if it had not come.
//
// The attempt's goroutine calls chunk; the timer's goroutine runs check.
type streamDeadline struct {
	idle   time.Duration
	clock  deadlineClock
	last   atomic.Int64 // when the last chunk carrying text was read (clock.since, plus 1); 0 before; fired once the timer ended the attempt
	timer  deadlineTimer
	ctx    context.Context // the attempt's: once it ends, the timer stops re-arming
	cancel context.CancelCauseFunc
	// claimed: a chunk claimed last (read and written by the attempt's goroutine only).
	claimed bool
}

// fired is last once the timer ended the attempt.
const fired = -1

// deadlineClock is the time source of a streamDeadline (realClock outside
// tests).
type deadlineClock interface {
	// since returns the time passed since the clock's start (monotonic).
	since() time.Duration
	// afterFunc runs f in its own goroutine after d.
	afterFunc(d time.Duration, f func()) deadlineTimer
}

// deadlineTimer is the part of *time.Timer a streamDeadline uses.
type deadlineTimer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// realClock is the clock of time.Now and time.AfterFunc, started when
// the process was (one value for every attempt: no allocation per
// attempt).
type realClock struct{}

// processStart is realClock's start.
var processStart = time.Now()

func (realClock) since() time.Duration { return time.Since(processStart) }

func (realClock) afterFunc(d time.Duration, f func()) deadlineTimer { return time.AfterFunc(d, f) }

// newStreamDeadline starts the first-token timer of the attempt whose
// context ctx is ended by cancel; clock nil is the real one.
func newStreamDeadline(ctx context.Context, cancel context.CancelCauseFunc, clock deadlineClock, first, idle time.Duration) *streamDeadline {
	if clock == nil {
		clock = realClock{}
	}
	d := &streamDeadline{idle: idle, clock: clock, ctx: ctx, cancel: cancel}
	d.timer = clock.afterFunc(time.Hour, d.check) // armed once d.timer is set: check uses it
	d.timer.Reset(first)
	return d
}

// chunk claims the arrival of a chunk carrying text, before it is
// delivered; it reports false when the timer ended the attempt first
// (the chunk must not be delivered; the attempt's context is then
// cancelled with the timer's cause, even if the timer's goroutine has not
// got that far yet). The first claim moves the deadline
// from the first-token timeout to the idle one; later ones only store the
// time.
func (d *streamDeadline) chunk() bool {
	now := int64(d.clock.since()) + 1
	for {
		last := d.last.Load()
		if last == fired {
			d.cancel(d.cause(d.claimed)) // what check cancels with, or will
			return false
		}
		if d.last.CompareAndSwap(last, now) {
			d.claimed = true
			if last == 0 {
				d.timer.Reset(d.idle)
			}
			return true
		}
	}
}

// stop releases the timer.
func (d *streamDeadline) stop() { d.timer.Stop() }

// check runs when the timer goes off.
func (d *streamDeadline) check() {
	if d.ctx.Err() != nil {
		return // the attempt ended
	}
	for {
		last := d.last.Load()
		if last == fired {
			return
		}
		if last != 0 {
			if left := d.idle - (d.clock.since() - time.Duration(last-1)); left > 0 {
				d.timer.Reset(left)
				return
			}
		}
		if !d.last.CompareAndSwap(last, fired) {
			continue // a chunk claimed it meanwhile: look again
		}
		d.cancel(d.cause(last != 0))
		return
	}
}

// cause is why the timer ends an attempt: the idle timeout once a chunk
// claimed its arrival, else the first-token timeout.
func (d *streamDeadline) cause(claimed bool) error {
	if claimed {
		return errIdleTimeout
	}
	return errFirstTokenTimeout
}
