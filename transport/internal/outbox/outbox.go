// Package outbox is a connection's queue of frames waiting for its writer:
// bounded, first in first out, never blocking the side that adds, and
// small while little waits. A channel of QueueSize frames costs every
// connection QueueSize pointers up front (4 KiB for 512), idle or not;
// this queue keeps a channel of a few frames, which carries the usual
// traffic at a channel's cost, and spills what does not fit into a slice
// that grows with what waits and is given back once written.
//
// A queue is bounded in frames and in bytes (the frames' Data): a frame
// of a token is a few dozen bytes, but a catch-up frame (the text of an
// answer so far) can be hundreds of KiB, so a bound in frames alone would
// let a client that stops reading hold hundreds of MiB. Counting bytes
// costs an atomic add as a frame goes in and one as it comes out; nothing
// is allocated for the bound.
package outbox

import (
	"math"
	"sync"
	"sync/atomic"

	"chatd/hub/protocol"
)

// ChanFrames is how many frames the channel part holds.
const ChanFrames = 8

// keepCap is the largest spill array an emptied queue keeps; a larger one
// (left by a burst) is released.
const keepCap = 16

// MaxBytes is the largest byte bound New accepts (1 GiB): the count fits
// an int32 with room for one frame over the bound and what concurrent
// producers add before they check, which keeps an idle connection's queue
// in the same 80-byte size class as before bytes were counted.
const MaxBytes = 1 << 30

// Queue holds frames for one writer. Any goroutine may Push; one writer
// either receives from C and, when More is signalled, calls Pop, or waits
// on the queue alone with Wait (and then takes what else waits with Pop
// while Len reports frames). The zero value is not usable: call New.
//
// Frames spill only while the channel is full or others have spilled
// already, and the writer takes the channel's before the spilled ones, so
// the frames of one producer (or of producers ordered by a lock) come out
// in the order they went in.
type Queue struct {
	ch       chan *protocol.Frame
	more     chan struct{}
	max      int32        // frames
	maxBytes int32        // bytes of the frames' Data
	bytes    atomic.Int32 // bytes of the frames waiting (and of those being added)
	spilled  atomic.Int32 // len(spill)-head, readable without the lock
	drain    atomic.Bool  // WatchDrain asked; Drained not yet reported
	waiting  atomic.Bool  // the writer waits in Wait (or is about to)
	woken    atomic.Bool  // Wake or WatchDrain signalled since Wait last looked

	mu    sync.Mutex
	head  int32             // spill[head:] wait, oldest first
	spill []*protocol.Frame // (the fields are int32 and ordered to keep the queue at 80 bytes)
}

// New returns an empty queue that holds at most max frames and at most
// maxBytes bytes of frame data (clamped to MaxBytes; 0 or less: MaxBytes).
// A frame larger than maxBytes is still taken when nothing waits.
func New(max int, maxBytes int) *Queue {
	if maxBytes <= 0 || maxBytes > MaxBytes {
		maxBytes = MaxBytes
	}
	return &Queue{ch: make(chan *protocol.Frame, min(ChanFrames, max)), more: make(chan struct{}, 1),
		max: int32(min(max, math.MaxInt32)), maxBytes: int32(maxBytes)}
}

// Push adds f at the end, or reports false (and adds nothing) when max
// frames already wait, or when f's bytes would take the queue over its
// byte bound (a frame into an empty queue is always taken, so a bound
// below the largest frame cannot refuse it forever). It never blocks.
// Producers adding at the bound at the same moment may all be refused.
func (q *Queue) Push(f *protocol.Frame) bool {
	n := int32(len(f.Data))
	if total := q.bytes.Add(n); total > q.maxBytes && total != n {
		q.bytes.Add(-n)
		return false
	}
	if !q.push(f) {
		q.bytes.Add(-n)
		return false
	}
	return true
}

// push adds f unless max frames wait.
func (q *Queue) push(f *protocol.Frame) bool {
	if q.spilled.Load() == 0 {
		select {
		case q.ch <- f:
			return true
		default:
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := len(q.spill) - int(q.head)
	if waiting == 0 {
		select { // the writer may have made room meanwhile
		case q.ch <- f:
			return true
		default:
		}
	}
	// While frames spill, the channel only empties (new frames spill
	// behind the others), so this count does not grow under the lock.
	if len(q.ch)+waiting >= int(q.max) {
		return false
	}
	if testHookSpill != nil {
		testHookSpill(q)
	}
	if len(q.spill) == cap(q.spill) && q.head > 0 {
		// Slide the waiting frames to the front rather than grow.
		n := copy(q.spill, q.spill[q.head:])
		clear(q.spill[n:])
		q.spill, q.head = q.spill[:n], 0
	}
	q.spill = append(q.spill, f)
	q.spilled.Store(int32(waiting + 1))
	q.signal()
	if waiting == 0 {
		// The channel was full a moment ago, but the writer takes from it
		// without the lock: it may have emptied it, seen nothing spilled
		// and gone back to Wait, which watches the channel alone. Wake it,
		// as for an event, so that it takes this frame.
		q.wakeWaiter()
	}
	return true
}

// testHookSpill, when set (by tests only), runs as push is about to spill
// a frame, with q.mu held.
var testHookSpill func(q *Queue)

// C delivers the frames that fit in the channel part, oldest first; the
// writer receives from it directly, and then calls Taken.
func (q *Queue) C() <-chan *protocol.Frame { return q.ch }

// Taken tells the queue that the writer received f from C: its bytes no
// longer count against the bound. Wait and Pop count what they return
// themselves.
func (q *Queue) Taken(f *protocol.Frame) { q.bytes.Add(-int32(len(f.Data))) }

// More receives a value while frames wait beyond the channel part: the
// writer then calls Pop. A value can be left over after the queue was
// emptied some other way; Pop then reports false.
func (q *Queue) More() <-chan struct{} { return q.more }

// Wait returns the oldest frame of the channel part, waiting for one, or
// nil when Wake or WatchDrain signalled since the last Wait. A writer that
// waits here rather than selecting over C and More saves locking and
// unlocking a second channel at every frame. It needs no More: frames
// spill only while the channel is full, so the writer, taking frames with
// Pop while Len reports some before it waits again, takes the spilled
// ones too; and a frame spilled after the writer emptied the channel
// (which it does without the lock) and looked at Len wakes it as Wake
// does. Only the writer calls it, and it looks for what woke it (its
// own events, Drained) after Wait returns: a wake-up signalled before Wait
// returns is then seen there, one signalled after makes the next Wait
// return nil at once.
func (q *Queue) Wait() *protocol.Frame {
	q.waiting.Store(true)
	var f *protocol.Frame
	if !q.woken.Load() {
		f = <-q.ch // a nil here is a wake-up (wakeWaiter)
	}
	q.waiting.Store(false)
	q.woken.Store(false)
	if f != nil {
		q.Taken(f)
	}
	return f
}

// Wake puts a value in More without adding a frame, so that a writer
// waiting on C and More (or in Wait) wakes up for an event of its own (a
// ping due, the connection closing); Pop then reports false unless frames
// spilled.
func (q *Queue) Wake() {
	q.wakeWaiter()
	q.signal()
}

// wakeWaiter wakes a writer in Wait. Wait stores waiting before it loads
// woken, and this stores woken before it loads waiting, so either Wait
// sees woken and returns at once or this sees waiting and puts a nil in
// the channel to end its wait (unless the channel is full: Wait then has
// a frame to return). A nil can be left over for a later Wait, which then
// returns nil once more; Pop passes over it. A queue whose writer never
// calls Wait never holds a nil.
func (q *Queue) wakeWaiter() {
	q.woken.Store(true)
	if q.waiting.Load() {
		select {
		case q.ch <- nil:
		default:
		}
	}
}

// WatchDrain asks the writer to report once, through Drained, that it
// has written what was queued; the writer is woken in case it went idle
// just before the request. It never blocks (the hub calls it under a
// conversation's lock, see hub.DrainWatcher).
func (q *Queue) WatchDrain() {
	if !q.drain.Swap(true) {
		q.wakeWaiter()
		q.signal()
	}
}

// Drained reports whether WatchDrain asked since the last report, and
// clears the request; only the writer calls it, between writes.
func (q *Queue) Drained() bool {
	return q.drain.Load() && q.drain.CompareAndSwap(true, false)
}

// Pop removes and returns the oldest frame, or reports false when none
// waits. While spilled frames remain, More holds a value again.
func (q *Queue) Pop() (*protocol.Frame, bool) {
	for {
		select {
		case f := <-q.ch:
			if f == nil {
				continue // a wake-up left for Wait (wakeWaiter), not a frame
			}
			if q.spilled.Load() > 0 {
				q.signal()
			}
			q.Taken(f)
			return f, true
		default:
		}
		break
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if int(q.head) == len(q.spill) {
		return nil, false
	}
	f := q.spill[q.head]
	q.spill[q.head] = nil
	q.head++
	q.Taken(f)
	waiting := len(q.spill) - int(q.head)
	q.spilled.Store(int32(waiting))
	switch {
	case waiting > 0:
		q.signal()
	case cap(q.spill) > keepCap:
		q.spill, q.head = nil, 0
	default:
		q.spill, q.head = q.spill[:0], 0
	}
	return f, true
}

// Bytes returns how many bytes of frame data wait (and are being added);
// it takes no lock.
func (q *Queue) Bytes() int { return int(q.bytes.Load()) }

// Len returns how many frames wait; it takes no lock. A wake-up left in
// the channel for Wait counts as one until the writer takes it.
func (q *Queue) Len() int { return len(q.ch) + int(q.spilled.Load()) }

// SpillCap returns the length of the spill array, for tests and
// measurements: 0 for a queue that never held more than the channel part.
func (q *Queue) SpillCap() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return cap(q.spill)
}

func (q *Queue) signal() {
	select {
	case q.more <- struct{}{}:
	default:
	}
}
