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
// The attempt's goroutine calls chunk; the timer's goroutine runs check.
type streamDeadline struct {
	idle   time.Duration
	base   time.Time    // last counts from here (monotonic)
	last   atomic.Int64 // when the last chunk carrying text was read: ns after base, plus 1; 0 before
	timer  *time.Timer
	ctx    context.Context // the attempt's: once it ends, the timer stops re-arming
	cancel context.CancelCauseFunc
	text   *atomic.Bool // text was delivered (the attempt's delivered flag)
}

// newStreamDeadline starts the first-token timer of the attempt whose
// context ctx is ended by cancel; text reports whether text was delivered.
func newStreamDeadline(ctx context.Context, cancel context.CancelCauseFunc, text *atomic.Bool, first, idle time.Duration) *streamDeadline {
	d := &streamDeadline{idle: idle, base: time.Now(), ctx: ctx, cancel: cancel, text: text}
	d.timer = time.AfterFunc(time.Hour, d.check) // armed once d.timer is set: check uses it
	d.timer.Reset(first)
	return d
}

// chunk records that a chunk carrying text was read. The first call
// moves the deadline from the first-token timeout to the idle one; later
// calls only store the time.
func (d *streamDeadline) chunk() {
	if d.last.Swap(int64(time.Since(d.base))+1) == 0 {
		d.timer.Reset(d.idle)
	}
}

// stop releases the timer.
func (d *streamDeadline) stop() { d.timer.Stop() }

// check runs when the timer goes off.
func (d *streamDeadline) check() {
	if d.ctx.Err() != nil {
		return // the attempt ended
	}
	last := d.last.Load()
	if last == 0 {
		if d.text.Load() {
			d.cancel(errIdleTimeout) // text came, but no chunk after it yet
		} else {
			d.cancel(errFirstTokenTimeout)
		}
		return
	}
	if left := d.idle - (time.Since(d.base) - time.Duration(last-1)); left > 0 {
		d.timer.Reset(left)
		return
	}
	d.cancel(errIdleTimeout)
}
