package api

import (
	"sync"
	"time"
)

// userRate allows each user n events per window, refilled continuously
// (a token bucket per user). Buckets of users idle for a whole window are
// dropped, so memory follows the active users.
type userRate struct {
	n      float64
	window time.Duration

	mu      sync.Mutex
	buckets map[string]*rateBucket
	swept   time.Time
}

type rateBucket struct {
	tokens float64
	at     time.Time
}

func newUserRate(n int, window time.Duration) *userRate {
	return &userRate{n: float64(n), window: window, buckets: make(map[string]*rateBucket)}
}

// take spends one of user's events; when none is left it returns false and
// how long until one is.
func (r *userRate) take(user string, now time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	b := r.buckets[user]
	if b == nil {
		b = &rateBucket{tokens: r.n, at: now}
		r.buckets[user] = b
	}
	perToken := r.window / time.Duration(r.n)
	b.tokens = min(r.n, b.tokens+float64(now.Sub(b.at))/float64(perToken))
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(perToken)), false
	}
	b.tokens--
	return 0, true
}

// give gives back one event take spent, for a request then refused: the
// bucket holds what it would without that take, never more than n (a
// bucket swept meanwhile is full already).
func (r *userRate) give(user string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.buckets[user]; b != nil {
		b.tokens = min(r.n, b.tokens+1)
	}
}

// sweepLocked forgets buckets full again (idle for a window), once per window.
func (r *userRate) sweepLocked(now time.Time) {
	if now.Sub(r.swept) < r.window {
		return
	}
	r.swept = now
	for u, b := range r.buckets {
		if now.Sub(b.at) >= r.window {
			delete(r.buckets, u)
		}
	}
}
