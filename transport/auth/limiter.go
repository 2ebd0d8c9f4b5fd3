package auth

import (
	"sync"
	"time"
)

// windowLimiter counts events per key (a client IP, an account) in a fixed
// window that starts at the key's first event. A key with max events in its
// window is blocked until the window ends. take checks and counts in one
// critical section, so parallel requests cannot all pass the check before
// any of them is counted. Memory is bounded: expired entries are swept,
// and when maxKeys live entries exist an arbitrary one is dropped to make
// room.
type windowLimiter struct {
	max     int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	entries   map[string]*window
	lastSweep time.Time
}

type window struct {
	count int
	start time.Time
}

func newWindowLimiter(max int, length time.Duration, maxKeys int, now func() time.Time) *windowLimiter {
	return &windowLimiter{max: max, window: length, maxKeys: maxKeys, now: now,
		entries: make(map[string]*window)}
}

// take counts one event for key, or reports that key is blocked and for
// how much longer (nothing is counted then).
func (l *windowLimiter) take(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.current(key, now)
	if w.count >= l.max {
		return w.start.Add(l.window).Sub(now), false
	}
	w.count++
	return 0, true
}

// current returns key's window, started now when it has none or it ended.
// Called with l.mu held.
func (l *windowLimiter) current(key string, now time.Time) *window {
	w, ok := l.entries[key]
	if ok && now.Sub(w.start) >= l.window {
		w.count, w.start = 0, now
	}
	if !ok {
		l.makeRoom(now)
		w = &window{start: now}
		l.entries[key] = w
	}
	return w
}

// refund gives back one event counted by take (an attempt that turned out
// not to count, such as a successful login from an IP).
func (l *windowLimiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.entries[key]; ok && w.count > 0 {
		w.count--
	}
}

// blocked reports whether key is blocked and for how much longer.
func (l *windowLimiter) blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.entries[key]
	if !ok || w.count < l.max {
		return 0, false
	}
	left := w.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.entries, key)
		return 0, false
	}
	return left, true
}

// reset forgets key's events (after a successful login).
func (l *windowLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

// size is the number of tracked keys.
func (l *windowLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// makeRoom sweeps expired entries once per window (or once a second when
// the map is full) and keeps the map under maxKeys. Called with l.mu held.
func (l *windowLimiter) makeRoom(now time.Time) {
	full := len(l.entries) >= l.maxKeys
	since := now.Sub(l.lastSweep)
	if since >= l.window || (full && since >= time.Second) {
		l.lastSweep = now
		for k, w := range l.entries {
			if now.Sub(w.start) >= l.window {
				delete(l.entries, k)
			}
		}
	}
	for k := range l.entries {
		if len(l.entries) < l.maxKeys {
			break
		}
		delete(l.entries, k)
	}
}
