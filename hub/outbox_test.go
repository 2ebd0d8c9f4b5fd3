package hub

import (
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestOutboxClosed: once its publisher stopped before the answer's end
// (claimed elsewhere), an outbox is no write in flight, so the local
// tabs' text is not held back for it, and what is pushed is dropped, the
// answer's last frame still reported as such.
func TestOutboxClosed(t *testing.T) {
	t.Parallel()
	o := &outbox{wake: make(chan struct{}, 1)}
	o.push(protocol.Delta("c", "m", 1, "a"))
	if got := o.take(); len(got) != 1 || !o.busy() {
		t.Fatalf("took %d frames, busy %v: want 1, busy", len(got), o.busy())
	}
	o.push(protocol.Delta("c", "m", 2, "b"))
	o.close()
	if o.busy() {
		t.Fatal("a closed outbox is busy")
	}
	if last := o.push(protocol.Delta("c", "m", 3, "c")); last {
		t.Fatal("a delta reported as the last frame")
	}
	done := protocol.Done(persistence.Message{ID: "m", ConversationID: "c", Status: persistence.StatusComplete}, nil)
	if last := o.push(done); !last {
		t.Fatal("the done not reported as the last frame")
	}
	if got := o.take(); len(got) != 0 || o.busy() {
		t.Fatalf("a closed outbox kept %d frames, busy %v", len(got), o.busy())
	}
}
