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
