package auth

import (
	"container/heap"
	"sync"
	"time"
)

// windowLimiter counts events per key (a client IP, an account) in a fixed
// window that starts at the key's first event. A key with max events in its
// window is blocked until the window ends. take checks and counts in one
// critical section, so parallel requests cannot all pass the check before
// any of them is counted.
//
// Memory is bounded by maxKeys. A full table never forgets a blocked key
// before its window ends: forgetting it would give whoever is refused a
// fresh allowance, and dropping keys is exactly what an attacker filling
// the table with new addresses or accounts would aim for. To make room it
// forgets the key that entered the counting state longest ago among those
// still under their limit (the oldest open window: its count is the
// smallest loss), and when every key tracked is blocked it refuses new
// keys (failing closed for them only) until the first block ends; keys
// already tracked are counted as before. Each operation does a bounded
// amount of work under the lock: open keys live in a list (oldest first),
// blocked keys in a heap ordered by when their windows end (a key blocked
// late may have started its window early), expired keys are swept from
// the list's front and the heap's top a few at a time, and eviction takes
// the open list's front.
type windowLimiter struct {
	max     int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*window
	open    windowList // count < max, oldest first
	blocked windowHeap // count >= max, the window that ends first on top
}

// sweepBatch is how many expired keys one operation sweeps at most.
const sweepBatch = 16

type window struct {
	count      int
	start      time.Time
	key        string
	list       *windowList // the list w is in; nil when blocked
	prev, next *window
	index      int // w's place in the blocked heap, -1 when not there
}

// windowHeap holds the blocked windows, the earliest start (so the
// earliest end) first; container/heap keeps its order.
type windowHeap []*window

func (h windowHeap) Len() int           { return len(h) }
func (h windowHeap) Less(i, j int) bool { return h[i].start.Before(h[j].start) }
func (h windowHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *windowHeap) Push(x any) {
	w := x.(*window)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *windowHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// top is the blocked window that ends first, or nil.
func (h windowHeap) top() *window {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

// windowList is a doubly linked list of windows.
type windowList struct{ front, back *window }

func (ls *windowList) pushBack(w *window) {
	w.list, w.prev, w.next = ls, ls.back, nil
	if ls.back != nil {
		ls.back.next = w
	} else {
		ls.front = w
	}
	ls.back = w
}

func (ls *windowList) remove(w *window) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		ls.front = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		ls.back = w.prev
	}
	w.list, w.prev, w.next = nil, nil, nil
}

func newWindowLimiter(max int, length time.Duration, maxKeys int, now func() time.Time) *windowLimiter {
	return &windowLimiter{max: max, window: length, maxKeys: maxKeys, now: now,
		entries: make(map[string]*window)}
}

// refusal tells why take refused an event, so the client can be told.
type refusal int

const (
	allowed    refusal = iota // the event was counted
	keyBlocked                // the key used up its window's allowance
	tableFull                 // a new key while every key tracked is blocked
)

// take counts one event for key, or reports that key is blocked and for
// how much longer (nothing is counted then). A key not tracked while the
// table is full of blocked keys is refused until the first block ends.
func (l *windowLimiter) take(key string) (time.Duration, bool) {
	wait, r := l.limit(key)
	return wait, r == allowed
}

// limit is take, saying why an event was refused.
func (l *windowLimiter) limit(key string) (time.Duration, refusal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	w, wait := l.current(key, now)
	if w == nil {
		return wait, tableFull
	}
	if w.count >= l.max {
		return w.start.Add(l.window).Sub(now), keyBlocked
	}
	w.count++
	if w.count >= l.max {
		l.open.remove(w)
		heap.Push(&l.blocked, w)
	}
	return 0, allowed
}

// current returns key's window, started now when it has none or it ended,
// or nil and how long until a key may be added when the table is full of
// blocked keys. Called with l.mu held.
func (l *windowLimiter) current(key string, now time.Time) (*window, time.Duration) {
	w, ok := l.entries[key]
	if ok && l.ended(w, now) {
		w.count, w.start = 0, now
		l.unlink(w)
		l.open.pushBack(w)
	}
	if ok {
		return w, 0
	}
	if wait, room := l.makeRoom(now); !room {
		return nil, wait
	}
	w = &window{start: now, key: key, index: -1}
	l.entries[key] = w
	l.open.pushBack(w)
	return w, 0
}

func (l *windowLimiter) ended(w *window, now time.Time) bool { return now.Sub(w.start) >= l.window }

// unlink takes w out of the open list or the blocked heap.
func (l *windowLimiter) unlink(w *window) {
	if w.index >= 0 {
		heap.Remove(&l.blocked, w.index)
		return
	}
	w.list.remove(w)
}

// forget drops w from the table.
func (l *windowLimiter) forget(w *window) {
	l.unlink(w)
	delete(l.entries, w.key)
}

// refund gives back one event counted by take (an attempt that turned out
// not to count, such as a successful login from an IP).
func (l *windowLimiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.entries[key]
	if !ok || w.count == 0 {
		return
	}
	w.count--
	if w.count < l.max && w.index >= 0 {
		l.unlink(w)
		l.open.pushBack(w)
	}
}

// isBlocked reports whether key is blocked and for how much longer.
func (l *windowLimiter) isBlocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.entries[key]
	if !ok || w.count < l.max {
		return 0, false
	}
	left := w.start.Add(l.window).Sub(now)
	if left <= 0 {
		l.forget(w)
		return 0, false
	}
	return left, true
}

// reset forgets key's events (after a successful login).
func (l *windowLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.entries[key]; ok {
		l.forget(w)
	}
}

// size is the number of tracked keys.
func (l *windowLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// sweep forgets up to sweepBatch keys whose window ended, from the fronts
// of the lists (the oldest). A key whose window ended behind a younger one
// waits for its turn, or is restarted when it is next used. Called with
// l.mu held.
func (l *windowLimiter) sweep(now time.Time) {
	for range sweepBatch {
		switch {
		case l.open.front != nil && l.ended(l.open.front, now):
			l.forget(l.open.front)
		case l.blocked.top() != nil && l.ended(l.blocked.top(), now):
			l.forget(l.blocked.top())
		default:
			return
		}
	}
}

// makeRoom keeps the table under maxKeys for a new key: it forgets the
// oldest open window, never a blocked one, or a blocked one whose window
// ended; with every key blocked it reports no room and how long until the
// first block ends. Called with l.mu held.
func (l *windowLimiter) makeRoom(now time.Time) (time.Duration, bool) {
	if len(l.entries) < l.maxKeys {
		return 0, true
	}
	if l.open.front != nil {
		l.forget(l.open.front)
		return 0, true
	}
	first := l.blocked.top()
	if l.ended(first, now) {
		l.forget(first)
		return 0, true
	}
	return max(first.start.Add(l.window).Sub(now), time.Second), false
}
