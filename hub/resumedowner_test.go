package hub

import (
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestClusterResumedOwnerMirrorsNextAnswer: A is cut off (or paused)
// while its answer runs; B takes the answer over and ends it, then starts
// the conversation's next answer. A learns of that start while its own
// answer still runs there (the store has not refused its checkpoint yet):
// once its answer ends, fenced, its tab must get B's answer, from its
// message to its done, without a reload.
func TestClusterResumedOwnerMirrorsNextAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "B")
	spy := &startSpy{started: make(chan AnswerRef, 4)}
	a := tc.startWith(t, "A", func(b *MemBus) Bus { spy.MemBus = b; return spy }, nil)
	b := tc.hubs[0]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	first := tc.send(t, a, onA, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "kept ")
	onB.waitText(t, first.MessageID, "kept ")
	tc.waitStored(t, first.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "kept " })

	release := a.store.holdUpdates() // A's next checkpoint reaches the store after the take-over
	t.Cleanup(release)
	tc.mem.Crash("A")
	if st := onB.waitDone(t, first.MessageID); st != "interrupted" {
		t.Fatalf("B's tab: done %q, want interrupted", st)
	}
	tc.waitUnlocked(t, conv.ID)
	tc.mem.Rejoin("A")
	next := tc.send(t, b, onB, conv.ID, "again")
	select {
	case got := <-spy.started: // A has handled it: its answer still runs there
		if got.MessageID != next.MessageID {
			t.Fatalf("A was told of %s, want %s", got.MessageID, next.MessageID)
		}
	case <-time.After(waitLimit):
		t.Fatal("A was not told that B's answer started")
	}

	run.say(t, "late ")
	release() // A's checkpoint is refused: A ends its answer with the stored state
	if st := onA.waitDone(t, first.MessageID); st != "interrupted" {
		t.Fatalf("A's tab: done %q, want interrupted", st)
	}
	brun := b.model.next(t)
	brun.say(t, "B runs ")
	close(brun.tokens)
	for _, s := range []*tab{onB, onA} {
		s.waitText(t, next.MessageID, "B runs ")
		if st := s.waitDone(t, next.MessageID); st != "complete" {
			t.Fatalf("tab %s: B's answer done %q, want complete", s.id, st)
		}
	}
	if n := countType(snapshotFrames(onA), next.MessageID, protocol.TypeMessage); n != 1 {
		t.Fatalf("A's tab got %d message frames of B's answer, want 1:\n%s", n, dump(snapshotFrames(onA)))
	}
	tc.waitUnlocked(t, conv.ID)
}

// startSpy is a MemBus that says when its hub has handled the start of an
// answer on another instance (UserEvent.Started).
type startSpy struct {
	*MemBus
	started chan AnswerRef
}

func (s *startSpy) Attach(h BusHandler) {
	s.MemBus.Attach(startSpyHandler{BusHandler: h, started: s.started})
}

type startSpyHandler struct {
	BusHandler
	started chan AnswerRef
}

func (h startSpyHandler) UserEvent(ev UserEvent) {
	h.BusHandler.UserEvent(ev)
	if ev.Started != nil {
		h.started <- *ev.Started
	}
}

// TestClusterStaleStartAfterLocalAnswer: a start of an answer that ended
// on another instance before this instance's own answer began, read again
// while that answer runs here (the events stream is read again from where
// it was after a bus blip), is not mirrored once the local answer ends:
// the local answer held the conversation's lock throughout, so nothing
// started elsewhere during it. The first version of mirrorNextLocked
// replayed the old answer whole to the tabs after the local one's done.
func TestClusterStaleStartAfterLocalAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	old := tc.send(t, b, onB, conv.ID, "before")
	brun := b.model.next(t)
	brun.say(t, "old answer")
	close(brun.tokens)
	if st := onB.waitDone(t, old.MessageID); st != "complete" {
		t.Fatalf("B's answer: done %q, want complete", st)
	}
	tc.waitUnlocked(t, conv.ID)

	onA := tc.follow(t, a, "a1", conv.ID)
	local := tc.send(t, a, onA, conv.ID, "now")
	run := a.model.next(t)
	run.say(t, "local ")
	onA.waitText(t, local.MessageID, "local ")
	a.remoteStarted(AnswerRef{ConversationID: conv.ID, MessageID: old.MessageID, UserID: tc.user.ID, Instance: "B"})
	close(run.tokens)
	if st := onA.waitDone(t, local.MessageID); st != "complete" {
		t.Fatalf("A's answer: done %q, want complete", st)
	}
	// A later answer's frames mark how far A's tab got: any replay of the
	// old answer would come before them.
	after := tc.send(t, a, onA, conv.ID, "after")
	arun := a.model.next(t)
	close(arun.tokens)
	onA.waitDone(t, after.MessageID)
	if n := len(messageFrames(snapshotFrames(onA), old.MessageID)); n != 0 {
		t.Fatalf("A's tab got %d frames of the answer that ended before its own:\n%s", n, dump(snapshotFrames(onA)))
	}
}
