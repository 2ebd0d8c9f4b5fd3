package natsbus

import (
	"testing"
	"time"
)

// TestConnStateStaleExpiry: the grace timer of a loss that fired just as
// the connection came back (up could not stop it) runs after a new loss
// has started: it must not declare that one down before its own grace.
// It did: the down channel was the same, and the connection lost again.
func TestConnStateStaleExpiry(t *testing.T) {
	t.Parallel()
	var c connState
	c.init(time.Hour) // no timer fires by itself within the test
	c.mu.Lock()
	stale, ch := c.armed, c.downCh
	c.mu.Unlock()
	c.up()
	c.lost() // lost again; the stale timer's function runs now
	c.expire(stale, ch)
	select {
	case <-c.down():
		t.Fatal("a stale grace timer declared a new loss down at once")
	default:
	}
	if err := c.err(); err != nil {
		t.Fatalf("err: %v, want nil within the grace", err)
	}
	c.mu.Lock()
	current := c.armed
	c.mu.Unlock()
	c.expire(current, ch) // the new loss's own timer, once its grace passed
	select {
	case <-c.down():
	default:
		t.Fatal("the current loss's timer did not declare it down")
	}
}

// TestConnStateErrSameWithinOutage: the error of one outage reads the same
// however long it has lasted, so that a log rate-limited by its text
// (internal/lograte) writes one line for it; its text said how long the
// connection had been gone, new at each request (a warning per login
// while NATS was down), and now says since when.
func TestConnStateErrSameWithinOutage(t *testing.T) {
	t.Parallel()
	var c connState
	c.init(time.Hour)
	c.mu.Lock()
	c.grace = 0 // declared down at once
	c.mu.Unlock()
	first := c.err()
	if first == nil {
		t.Fatal("err: nil while the connection is lost past its grace")
	}
	time.Sleep(2 * time.Millisecond) // a later request, some time into the outage
	if again := c.err(); again == nil || again.Error() != first.Error() {
		t.Fatalf("err later in the same outage: %v, want %q", again, first)
	}
}
