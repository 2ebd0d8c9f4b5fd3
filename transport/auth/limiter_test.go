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
// first block ends. Before, a full table dropped arbitrary keys, the
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

// TestWindowLimiterFullTableFirstEnd: with the table full of blocked keys,
// a new key is taken as soon as any block ends, also when the block that
// ends first is not the one that began first (a key blocked late whose
// window started early). Before, the blocks were kept in the order they
// began, and a new key waited for the first one's end.
func TestWindowLimiterFullTableFirstEnd(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newWindowLimiter(2, 10*time.Second, 2, c.now)
	steps := []struct {
		at  time.Duration // since the start
		key string
		ok  bool
	}{
		{0, "early", true},                   // early's window: 0s to 10s
		{5 * time.Second, "late", true},      // late's window: 5s to 15s
		{5 * time.Second, "late", true},      // late blocked (first to block)
		{6 * time.Second, "early", true},     // early blocked, its block ends first
		{7 * time.Second, "new", false},      // every key blocked: refused
		{11 * time.Second, "new", true},      // early's block ended: room
		{11 * time.Second, "late", false},    // late still blocked
		{11 * time.Second, "new", true},      // new blocked
		{12 * time.Second, "another", false}, // full of blocks again
		{15 * time.Second, "another", true},  // late's block ended
	}
	start := c.now()
	for _, s := range steps {
		c.advance(start.Add(s.at).Sub(c.now()))
		if _, ok := l.take(s.key); ok != s.ok {
			t.Fatalf("take(%q) at %s: ok %v, want %v", s.key, s.at, ok, s.ok)
		}
	}
}
