package limits

import (
	"fmt"
	"testing"
	"time"
)

// TestIdleUsersForgotten: the users whose only use was a send or a new
// conversation (REST clients, no connection counted) are forgotten once
// idle, when a new user comes, as those of closed connections are: an
// instance serving API clients alone kept one entry per user for good.
func TestIdleUsersForgotten(t *testing.T) {
	l := New(Options{})
	for i := range 100 {
		user := fmt.Sprintf("api-%d", i)
		if i%2 == 0 {
			if err := l.AllowSend(user); err != nil {
				t.Fatal(err)
			}
		} else if _, ok := l.AllowConversation(user); !ok {
			t.Fatal("conversation refused")
		}
	}
	l.mu.Lock()
	long := time.Now().Add(-10 * time.Minute)
	for _, s := range l.users { // idle for ten minutes, the last sweep as long ago
		s.frames.last, s.sends.last, s.refused.last, s.convs.last = long, long, long, long
	}
	l.swept = long
	l.mu.Unlock()
	if err := l.AllowSend("newcomer"); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.users) != 1 || l.users["newcomer"] == nil {
		t.Fatalf("%d users kept after the idle ones were swept, want the newcomer alone", len(l.users))
	}
}
