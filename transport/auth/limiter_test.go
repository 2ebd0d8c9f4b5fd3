package auth

import (
	"fmt"
	"strconv"
	"sync"
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
		if _, blocked := l.isBlocked("k"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.take("k")
		c.advance(time.Minute)
	}
	wait, blocked := l.isBlocked("k")
	if !blocked || wait != 12*time.Minute {
		t.Fatalf("after 3 failures: blocked %v, wait %v; want 12m (window from the first failure)", blocked, wait)
	}
	if _, blocked := l.isBlocked("other"); blocked {
		t.Fatal("another key is blocked")
	}
	c.advance(12 * time.Minute)
	if _, blocked := l.isBlocked("k"); blocked {
		t.Fatal("still blocked after the window")
	}
	l.take("k")
	if _, blocked := l.isBlocked("k"); blocked {
		t.Fatal("a new window starts from zero")
	}
	l.take("k")
	l.take("k")
	if _, blocked := l.isBlocked("k"); !blocked {
		t.Fatal("three failures in the new window do not block")
	}
	l.reset("k")
	if _, blocked := l.isBlocked("k"); blocked {
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
	// Expired entries are swept once a window has passed, a few at each
	// take (no request pays for sweeping the whole table).
	c.advance(2 * time.Minute)
	for range 100/sweepBatch + 1 {
		l.take("late")
	}
	if n := l.size(); n != 1 {
		t.Fatalf("%d keys after expiry, want 1", n)
	}
}

// TestWindowLimiterFullTable: a table filled with new keys, from parallel
// requests, never forgets a blocked key before its window ends (the
// attacked account or address keeps its count); it makes room by
// forgetting the oldest keys still under their limit, and once every key
// it tracks is blocked it refuses new keys, and only them, until the
// oldest block ends. Before, a full table dropped arbitrary keys, the
// blocked ones included.
func TestWindowLimiterFullTable(t *testing.T) {
	t.Parallel()
	const maxKeys, limit = 100, 3
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	var clockMu sync.Mutex
	now := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return c.now()
	}
	l := newWindowLimiter(limit, time.Minute, maxKeys, now)
	block := func(key string) {
		t.Helper()
		for range limit {
			if _, ok := l.take(key); !ok {
				t.Fatalf("%s refused before its limit", key)
			}
		}
	}
	block("victim")
	l.take("half") // one event: open, the oldest
	// 8 attackers with 1,000 new keys each, in parallel.
	var wg sync.WaitGroup
	for a := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.take(fmt.Sprintf("flood-%d-%d", a, i))
			}
		})
	}
	wg.Wait()
	if n := l.size(); n > maxKeys {
		t.Fatalf("%d keys tracked, bound is %d", n, maxKeys)
	}
	if _, blocked := l.isBlocked("victim"); !blocked {
		t.Fatal("the flood of new keys unblocked the victim")
	}
	if wait, ok := l.take("victim"); ok || wait <= 0 {
		t.Fatalf("victim's take after the flood: ok %v, wait %v", ok, wait)
	}

	// Fill the table with blocked keys, in parallel: a new key is then
	// refused (failing closed), the blocked keys stay blocked.
	for a := range 4 {
		wg.Go(func() {
			for i := range maxKeys {
				for range limit {
					l.take(fmt.Sprintf("blocked-%d-%d", a, i))
				}
			}
		})
	}
	wg.Wait()
	if n := l.size(); n != maxKeys {
		t.Fatalf("%d keys tracked, want the bound %d", n, maxKeys)
	}
	if _, blocked := l.isBlocked("victim"); !blocked {
		t.Fatal("blocked keys pushed the victim out")
	}
	if wait, ok := l.take("newcomer"); ok || wait <= 0 {
		t.Fatalf("a new key with the table full of blocked keys: ok %v, wait %v; want refused", ok, wait)
	}
	// Once the blocks end, new keys are counted again.
	clockMu.Lock()
	c.advance(time.Minute)
	clockMu.Unlock()
	if _, ok := l.take("newcomer"); !ok {
		t.Fatal("a new key refused after every block ended")
	}
}
