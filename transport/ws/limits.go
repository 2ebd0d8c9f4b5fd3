package ws

import (
	"sync"
	"time"

	"chatd/hub/protocol"
)

// userLimits bounds, per user, open connections and frames per minute. It
// is shared by all connections of a handler.
type userLimits struct {
	maxConns int
	frames   rate
	sends    rate

	mu    sync.Mutex
	users map[string]*userState
	swept time.Time
}

type userState struct {
	conns  int
	frames bucket
	sends  bucket
}

// rate is a token bucket's refill per second and capacity.
type rate struct {
	perSecond float64
	burst     float64
}

func perMinute(n int) rate {
	return rate{perSecond: float64(n) / 60, burst: max(1, float64(n)/4)}
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take spends one token if there is one.
func (b *bucket) take(r rate, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = r.burst
	} else {
		b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.perSecond)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newUserLimits(maxConns, framesPerMinute, sendsPerMinute int) *userLimits {
	return &userLimits{maxConns: maxConns, frames: perMinute(framesPerMinute),
		sends: perMinute(sendsPerMinute), users: make(map[string]*userState)}
}

func (l *userLimits) state(userID string) *userState {
	s := l.users[userID]
	if s == nil {
		s = &userState{}
		l.users[userID] = s
	}
	return s
}

// acquireConn counts a new connection, or refuses it past the limit.
func (l *userLimits) acquireConn(userID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(time.Now())
	s := l.state(userID)
	if s.conns >= l.maxConns {
		return false
	}
	s.conns++
	return true
}

func (l *userLimits) releaseConn(userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.users[userID]; s != nil && s.conns > 0 {
		s.conns--
	}
}

// allowFrame spends the user's budget for one client frame.
func (l *userLimits) allowFrame(userID, typ string) *protocol.Error {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(userID)
	if !s.frames.take(l.frames, now) {
		return protocol.Errorf(protocol.CodeRateLimited, "too many frames; slow down")
	}
	if (typ == protocol.TypeSend || typ == protocol.TypeRegenerate) && !s.sends.take(l.sends, now) {
		return protocol.Errorf(protocol.CodeRateLimited, "too many messages per minute; wait a moment")
	}
	return nil
}

// sweepLocked forgets users without connections whose buckets are full
// again, so memory stays bounded.
func (l *userLimits) sweepLocked(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for id, s := range l.users {
		if s.conns == 0 && now.Sub(s.frames.last) > 2*time.Minute && now.Sub(s.sends.last) > 2*time.Minute {
			delete(l.users, id)
		}
	}
}

// strikes counts events in a sliding window and reports when a limit is hit.
type strikes struct {
	limit  int
	window time.Duration
	times  []time.Time
}

func newStrikes(limit int, window time.Duration) *strikes {
	return &strikes{limit: limit, window: window}
}

// hit records one event and reports whether the window now holds more than limit.
func (s *strikes) hit(now time.Time) bool {
	keep := s.times[:0]
	for _, t := range s.times {
		if now.Sub(t) < s.window {
			keep = append(keep, t)
		}
	}
	s.times = append(keep, now)
	return len(s.times) > s.limit
}
