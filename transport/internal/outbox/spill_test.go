package outbox

import (
	"testing"
	"time"

	"chatd/hub/protocol"
)

// TestSpillWakesWaitingWriter: a frame spills when push found the channel
// full, but the writer takes from the channel without the lock, so it may
// empty it, see nothing spilled (Len 0) and wait again in Wait, which
// watches the channel alone, before the frame is spilled. The writer must
// still be woken for it. Before, it slept with the frame spilled, and
// every frame after it spilled behind it until the queue was full (a tab
// frozen mid-answer until its next ping, or closed as too slow: seen as a
// hang of BenchmarkHandOff/wait/backlog). Not parallel: it sets the
// package's test hook.
func TestSpillWakesWaitingWriter(t *testing.T) {
	q := New(64, 0)
	f := &protocol.Frame{Type: protocol.TypeDelta, Data: []byte("x")}
	for range ChanFrames {
		if !q.Push(f) {
			t.Fatal("push refused with room left")
		}
	}
	got := make(chan *protocol.Frame, 1)
	testHookSpill = func(q *Queue) {
		testHookSpill = nil
		// The writer empties the channel and finds nothing waiting.
		for range ChanFrames {
			q.Taken(<-q.ch)
		}
		if n := q.Len(); n != 0 {
			t.Errorf("Len = %d after the channel was emptied, want 0", n)
		}
		go func() { got <- q.Wait() }() // and waits again
	}
	t.Cleanup(func() { testHookSpill = nil })
	if !q.Push(f) {
		t.Fatal("push refused with room left")
	}
	select {
	case w := <-got:
		if w != nil {
			t.Fatalf("Wait returned a frame from an empty channel: %v", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer was not woken for the spilled frame")
	}
	if q.Len() != 1 {
		t.Fatalf("Len = %d, want the spilled frame", q.Len())
	}
	if p, ok := q.Pop(); !ok || p != f {
		t.Fatalf("Pop = %v, %v; want the spilled frame", p, ok)
	}
}
