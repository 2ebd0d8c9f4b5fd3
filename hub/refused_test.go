package hub

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// refusingBus is a member's bus that refuses for good (ErrRefused) every
// delta frame whose text has marker, as natsbus refuses a frame larger
// than the NATS servers take; it counts those calls.
type refusingBus struct {
	*MemBus
	marker  string
	refused atomic.Int32
}

func (r *refusingBus) Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error {
	if f.Type == protocol.TypeDelta && strings.Contains(string(f.Data), r.marker) {
		r.refused.Add(1)
		return fmt.Errorf("test bus: frame of %s: %w", f.MessageID, ErrRefused)
	}
	return r.MemBus.Publish(ctx, a, f)
}

// TestClusterRefusedFrameSkipped: a frame the bus refuses for good is
// published once, not retried, and the answer's publisher goes on: the
// rest of the answer and its done reach the followers on other instances
// (which take the missing text from the store) and the lock is released.
// The hub retried it as if the bus were unreachable, for as long as it
// ran: the done was never published and the conversation stayed locked.
func TestClusterRefusedFrameSkipped(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	bus := &refusingBus{marker: "REFUSED"}
	a := tc.startWith(t, "A", func(m *MemBus) Bus { bus.MemBus = m; return bus }, nil)
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "first ")
	onB.waitText(t, res.MessageID, "first ")
	run.say(t, "REFUSED ", "last")
	close(run.tokens)
	if st := onB.waitDone(t, res.MessageID); st != "complete" {
		t.Fatalf("follower on B: done %q, want complete", st)
	}
	stored := tc.message(t, res.MessageID)
	if stored.Status != persistence.StatusComplete || stored.Content != "first REFUSED last" {
		t.Fatalf("stored %q %q", stored.Status, stored.Content)
	}
	onB.waitText(t, res.MessageID, stored.Content)
	tc.waitUnlocked(t, conv.ID)
	if n := bus.refused.Load(); n != 1 {
		t.Fatalf("the refused frame was published %d times, want once", n)
	}
}
