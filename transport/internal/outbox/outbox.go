// Package outbox is a connection's queue of frames waiting for its writer:
// bounded, first in first out, never blocking the side that adds, and
// holding no buffer while empty. A channel of QueueSize frames costs every
// connection QueueSize pointers up front (4 KiB for 512), idle or not;
// this queue grows with what waits and gives a burst's room back once it
// is written.
package outbox

import (
	"sync"
	"sync/atomic"

	"chatd/hub/protocol"
)

// keepCap is the largest backing array an emptied queue keeps for the next
// frames; a larger one (left by a burst) is released.
const keepCap = 16

// Queue holds frames for one writer. Any goroutine may Push; one writer
// waits on Ready and Pops. The zero value is not usable: call New.
type Queue struct {
	max   int
	ready chan struct{}
	n     atomic.Int32 // frames waiting, readable without the lock

	mu     sync.Mutex
	frames []*protocol.Frame // frames[head:] wait, oldest first
	head   int
}

// New returns an empty queue that holds at most max frames.
func New(max int) *Queue {
	return &Queue{max: max, ready: make(chan struct{}, 1)}
}

// Push adds f at the end, or reports false (and adds nothing) when max
// frames already wait. It never blocks.
func (q *Queue) Push(f *protocol.Frame) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := len(q.frames) - q.head
	if waiting >= q.max {
		return false
	}
	if len(q.frames) == cap(q.frames) && q.head > 0 {
		// Slide the waiting frames to the front rather than grow.
		n := copy(q.frames, q.frames[q.head:])
		clear(q.frames[n:])
		q.frames, q.head = q.frames[:n], 0
	}
	q.frames = append(q.frames, f)
	q.n.Store(int32(waiting + 1))
	if waiting == 0 {
		q.signal()
	}
	return true
}

// Ready receives a value while frames wait: the writer selects on it, then
// Pops one frame. A value can be left over after the queue was emptied
// some other way (a drain); Pop then reports false.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Pop removes and returns the oldest frame, or reports false when none
// waits. When frames remain, Ready holds a value again, so a writer that
// takes one frame per wake-up between its other duties sees them all.
func (q *Queue) Pop() (*protocol.Frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.frames) {
		return nil, false
	}
	f := q.frames[q.head]
	q.frames[q.head] = nil
	q.head++
	waiting := len(q.frames) - q.head
	q.n.Store(int32(waiting))
	switch {
	case waiting > 0:
		q.signal()
	case cap(q.frames) > keepCap:
		q.frames, q.head = nil, 0
	default:
		q.frames, q.head = q.frames[:0], 0
	}
	return f, true
}

// Len returns how many frames wait; it takes no lock.
func (q *Queue) Len() int { return int(q.n.Load()) }

// Cap returns the length of the backing array, for tests and measurements:
// 0 for a queue that never held a frame.
func (q *Queue) Cap() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return cap(q.frames)
}

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
