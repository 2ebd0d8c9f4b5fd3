package limits

import (
	"testing"
	"time"

	"chatd/hub/protocol"
)

func TestConnections(t *testing.T) {
	l := New(Options{MaxConns: 2})
	first, second := l.AcquireConn("u"), l.AcquireConn("u")
	if !first || !second {
		t.Fatal("the first two connections were refused")
	}
	if l.AcquireConn("u") {
		t.Fatal("a third connection was accepted")
	}
	if !l.AcquireConn("v") {
		t.Fatal("another user was refused")
	}
	l.ReleaseConn("u")
	if !l.AcquireConn("u") {
		t.Fatal("a released slot was not reused")
	}
}

func TestFrameBudget(t *testing.T) {
	l := New(Options{FramesPerMinute: 8, SendsPerMinute: 4}) // bursts of 2 and 1
	send := func(user string) *protocol.Error {
		if err := l.AllowFrame(user); err != nil {
			return err
		}
		return l.AllowSend(user)
	}
	if err := send("u"); err != nil {
		t.Fatalf("first send: %v", err)
	}
	if err := send("u"); err == nil || err.Code != protocol.CodeRateLimited {
		t.Fatalf("second send in a burst of one: %v", err)
	}
	if err := send("v"); err != nil {
		t.Fatalf("another user's send: %v", err)
	}
	// The frame budget (burst 2) was spent by the two sends above.
	if err := l.AllowFrame("u"); err == nil {
		t.Fatal("a third frame in a burst of two was allowed")
	}
}

func TestBucketRefills(t *testing.T) {
	r := perMinute(60) // one a second, burst 15
	var b bucket
	now := time.Now()
	for i := 0; i < 15; i++ {
		if !b.take(r, now) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if b.take(r, now) {
		t.Fatal("the bucket gave more than its burst")
	}
	if !b.take(r, now.Add(1100*time.Millisecond)) {
		t.Fatal("the bucket did not refill after a second")
	}
}

// TestConversationBudgetParallel: the per-user creation budget holds under
// parallel callers, says how long to wait, and users do not share it.
func TestConversationBudgetParallel(t *testing.T) {
	t.Parallel()
	l := New(Options{ConversationsPerMinute: 5})
	allowed := make(chan bool, 50)
	done := make(chan struct{})
	for range 50 {
		go func() {
			_, ok := l.AllowConversation("u")
			allowed <- ok
			done <- struct{}{}
		}()
	}
	for range 50 {
		<-done
	}
	close(allowed)
	n := 0
	for ok := range allowed {
		if ok {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d conversations allowed in a burst, want 5", n)
	}
	wait, ok := l.AllowConversation("u")
	if ok || wait <= 0 || wait > 12*time.Second {
		t.Fatalf("after the burst: ok %v, wait %v; want a wait of at most 12s (5 per minute)", ok, wait)
	}
	if _, ok := l.AllowConversation("v"); !ok {
		t.Fatal("another user shares the budget")
	}
	l.AcquireConn("v")
	if got := l.ConnectedUsers(); len(got) != 1 || got[0] != "v" {
		t.Fatalf("ConnectedUsers = %v, want [v]", got)
	}
}
