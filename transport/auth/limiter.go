package auth

import (
	"sync"
	"time"
)

// failureLimiter counts failed logins per key (a client IP, an account) in a
// fixed window that starts at the key's first failure. A key with max
// failures in its window is blocked until the window ends. Memory is
// bounded: expired entries are swept, and when maxKeys live entries exist
// an arbitrary one is dropped to make room.
type failureLimiter struct {
	max     int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	entries   map[string]*failures
	lastSweep time.Time
}

type failures struct {
	count int
	start time.Time
}

func newFailureLimiter(max int, window time.Duration, maxKeys int, now func() time.Time) *failureLimiter {
	return &failureLimiter{max: max, window: window, maxKeys: maxKeys, now: now,
		entries: make(map[string]*failures)}
}

// blocked reports whether key is blocked and for how much longer.
func (l *failureLimiter) blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.entries[key]
	if !ok || f.count < l.max {
		return 0, false
	}
	left := f.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.entries, key)
		return 0, false
	}
	return left, true
}

// fail records one failure for key.
func (l *failureLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.entries[key]
	if ok && now.Sub(f.start) >= l.window {
		f.count, f.start = 0, now
	}
	if !ok {
		l.makeRoom(now)
		f = &failures{start: now}
		l.entries[key] = f
	}
	f.count++
}

// reset forgets key's failures (after a successful login).
func (l *failureLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

// size is the number of tracked keys.
func (l *failureLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// makeRoom sweeps expired entries once per window (or once a second when
// the map is full) and keeps the map under maxKeys. Called with l.mu held.
func (l *failureLimiter) makeRoom(now time.Time) {
	full := len(l.entries) >= l.maxKeys
	since := now.Sub(l.lastSweep)
	if since >= l.window || (full && since >= time.Second) {
		l.lastSweep = now
		for k, f := range l.entries {
			if now.Sub(f.start) >= l.window {
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
