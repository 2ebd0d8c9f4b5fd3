package limits

import (
	"testing"
	"time"

	"chatd/hub/protocol"
)

func TestConnections(t *testing.T) {
	l := New(Options{MaxConns: 2})
	if !l.AcquireConn("u") || !l.AcquireConn("u") {
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
	if err := l.AllowFrame("u", protocol.TypeSend); err != nil {
		t.Fatalf("first send: %v", err)
	}
	if err := l.AllowFrame("u", protocol.TypeSend); err == nil || err.Code != protocol.CodeRateLimited {
		t.Fatalf("second send in a burst of one: %v", err)
	}
	if err := l.AllowFrame("v", protocol.TypeSend); err != nil {
		t.Fatalf("another user's send: %v", err)
	}
	// The frame budget (burst 2) was spent by the two sends above.
	if err := l.AllowFrame("u", protocol.TypePing); err == nil {
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
