package ws_test

import (
	"testing"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
)

// TestFramesReleasedOnceWritten: a connection releases each frame it is
// handed once the frame is on the socket (hub.FrameReleaser), so the
// answer's next delta is built in the same frame, and the client reads
// each delta as it was built; a frame handed to a connection that is
// closing is released at once, unwritten.
func TestFramesReleasedOnceWritten(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u1"})
	cl.expect("hello")
	s.waitHub("the connection to register", func(h *hubtest.Hub) bool { return h.Count() == 1 })
	sub := s.hub.Subscribers("u1")[0]
	if _, ok := sub.(hub.FrameReleaser); !ok {
		t.Fatal("the connection does not release the frames it writes")
	}
	var fs protocol.Frames
	var first *protocol.Frame
	for i, text := range []string{"one ", "two ", "three "} {
		f := fs.DeltaAt("c", "m", int64(i+1), 0, []byte(text), 1)
		if first == nil {
			first = f
		} else if f != first {
			t.Fatalf("delta %d built in a new frame: the connection did not release the one it wrote", i)
		}
		sub.Deliver(f)
		if got := cl.expect("delta"); got.Text != text || got.Seq != int64(i+1) {
			t.Fatalf("delta %d reads %q at %d, want %q at %d", i, got.Text, got.Seq, text, i+1)
		}
		// A frame queued behind the delta: once the client has it, the
		// writer is past the delta's write.
		sub.Deliver(protocol.Conversation("updated", persistence.Conversation{ID: "c1", Title: "titled"}))
		cl.expect("conversation")
	}
	sub.Close(protocol.CloseGoingAway, "test")
	f := fs.DeltaAt("c", "m", 9, 0, []byte("late"), 1)
	sub.Deliver(f)
	if again := fs.DeltaAt("c", "m", 10, 0, []byte("later"), 1); again != f {
		t.Fatal("a frame handed to a closing connection was not released")
	}
}
