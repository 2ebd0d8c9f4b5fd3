package auth

import (
	"strconv"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestWindowLimiterWindow(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newWindowLimiter(3, 15*time.Minute, 100, c.now)
	for i := 0; i < 3; i++ {
		if _, blocked := l.blocked("k"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.take("k")
		c.advance(time.Minute)
	}
	wait, blocked := l.blocked("k")
	if !blocked || wait != 12*time.Minute {
		t.Fatalf("after 3 failures: blocked %v, wait %v; want 12m (window from the first failure)", blocked, wait)
	}
	if _, blocked := l.blocked("other"); blocked {
		t.Fatal("another key is blocked")
	}
	c.advance(12 * time.Minute)
	if _, blocked := l.blocked("k"); blocked {
		t.Fatal("still blocked after the window")
	}
	l.take("k")
	if _, blocked := l.blocked("k"); blocked {
		t.Fatal("a new window starts from zero")
	}
	l.take("k")
	l.take("k")
	if _, blocked := l.blocked("k"); !blocked {
		t.Fatal("three failures in the new window do not block")
	}
	l.reset("k")
	if _, blocked := l.blocked("k"); blocked {
		t.Fatal("reset does not unblock")
	}
}

func TestWindowLimiterMemoryBound(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newWindowLimiter(5, time.Minute, 100, c.now)
	for i := 0; i < 10_000; i++ {
		l.take("ip-" + strconv.Itoa(i))
		if n := l.size(); n > 100 {
			t.Fatalf("%d keys tracked, bound is 100", n)
		}
	}
	// Expired entries are swept once a window has passed.
	c.advance(2 * time.Minute)
	l.take("late")
	if n := l.size(); n != 1 {
		t.Fatalf("%d keys after expiry, want 1", n)
	}
}
