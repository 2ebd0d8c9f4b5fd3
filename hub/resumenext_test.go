package hub

import (
	"context"
	"fmt"
	"testing"

	"chatd/hub/protocol"
)

// TestClusterResumeNextWhileMirrorBehind: answer X ran on A; B's mirror
// of it is behind (its follow paused before X's done), and Y, started on
// A since, waits there to be mirrored (conv.next). A tab that had Y from A
// reconnects to B and resumes Y by name: it gets Y's text after its
// cursor once B's mirror reaches Y, none of X's frames, no message frame
// (it named the answer), no repeat, and its done; B's tab that follows the
// conversation still gets X's end, then Y whole. It used to get X's
// message, text and done, then Y again from its start (or bad_seq, for a
// cursor past Y's last checkpoint).
func TestClusterResumeNextWhileMirrorBehind(t *testing.T) {
	t.Parallel()
	for _, from := range []int64{0, 1, 2} {
		t.Run(fmt.Sprint("from ", from), func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A", "B")
			a, b := tc.hubs[0], tc.hubs[1]
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)
			x, y, run, resume := mirrorBehindNext(t, tc, a, onA, onB, conv.ID)
			s := resumeOn(t, tc, b, "b2", conv.ID, y, from)
			if frames, _ := s.snapshot(); len(frames) != 1 || frames[0].Type != protocol.TypeAck {
				t.Fatalf("before B's mirror reads on, the tab has more than its ack:\n%s", dump(frames))
			}
			resume()
			run.say(t, "zz")
			close(run.tokens)
			if st := s.waitDone(t, y); st != "complete" {
				t.Fatalf("done %q", st)
			}
			frames, closed := s.snapshot()
			if closed != 0 || countType(frames, "", protocol.TypeError) != 0 {
				t.Fatalf("tab closed %d; frames:\n%s", closed, dump(frames))
			}
			for _, typ := range []string{protocol.TypeMessage, protocol.TypeReasoning, protocol.TypeDelta, protocol.TypeDone} {
				if n := countType(frames, x, typ); n != 0 {
					t.Fatalf("%d %s frames of the answer before the one resumed:\n%s", n, typ, dump(frames))
				}
			}
			if n := countType(frames, y, protocol.TypeMessage); n != 0 {
				t.Fatalf("the answer resumed by name was announced %d times:\n%s", n, dump(frames))
			}
			if text, dones, err := answerOf(frames, y, from); err != nil || text != "yyzz"[from:] || dones != 1 {
				t.Fatalf("after the cursor: %q, %d dones, %v; want %q once:\n%s", text, dones, err, "yyzz"[from:], dump(frames))
			}
			onB.waitText(t, x, "xx!")
			if st := onB.waitDone(t, x); st != "complete" {
				t.Fatalf("tab b1: done of X %q", st)
			}
			onB.waitText(t, y, "yyzz")
			onB.waitDone(t, y)
		})
	}
}

// TestClusterResumeNextEndedUnseen: a tab on B resumed Y, waiting to be
// mirrored behind X as above; Y ends and Z starts before B's mirror read
// X's end, so B will not mirror Y: the tab is told to reconnect and resume
// (1001), as when a mirror fails, rather than wait for frames that never
// come.
func TestClusterResumeNextEndedUnseen(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	_, y, run, resume := mirrorBehindNext(t, tc, a, onA, onB, conv.ID)
	s := resumeOn(t, tc, b, "b2", conv.ID, y, 2)
	close(run.tokens)
	onA.waitDone(t, y)
	tc.waitUnlocked(t, conv.ID)
	z := tc.send(t, a, onA, conv.ID, "and again")
	runZ := a.model.next(t)
	s.waitUntil(t, "told to reconnect and resume", func(fs []*protocol.Frame, closed protocol.CloseCode) bool {
		return closed == protocol.CloseGoingAway && countType(fs, "", protocol.TypeError) == 1
	})
	resume()
	runZ.say(t, "z")
	close(runZ.tokens)
	onB.waitDone(t, z.MessageID)
	if frames, _ := s.snapshot(); countType(frames, y, protocol.TypeDelta)+countType(frames, y, protocol.TypeDone) != 0 {
		t.Fatalf("the tab got frames of Y:\n%s", dump(frames))
	}
}

// mirrorBehindNext runs answer X on a to its end, "xx", with B's follows
// paused after that, before X's reasoning "hm", its text "!" and its done
// (so B's mirror of X is behind), then starts
// answer Y there and streams "yy" to tab onA. It returns X's and Y's ids,
// Y's run, and resume, which lets B's follows read on.
func mirrorBehindNext(t *testing.T, tc *testCluster, a *testHub, onA, onB *tab, convID string) (x, y string, run *scriptRun, resume func()) {
	t.Helper()
	res := tc.send(t, a, onA, convID, "hi")
	runX := a.model.next(t)
	runX.say(t, "xx")
	onB.waitText(t, res.MessageID, "xx")
	resume = tc.mem.PauseFollows("B")
	t.Cleanup(resume)
	runX.say(t, "think:hm", "!") // frames of X B's mirror has still to read
	close(runX.tokens)
	onA.waitDone(t, res.MessageID)
	tc.waitUnlocked(t, convID)
	next := tc.send(t, a, onA, convID, "again")
	run = a.model.next(t)
	run.say(t, "yy")
	onA.waitText(t, next.MessageID, "yy")
	return res.MessageID, next.MessageID, run, resume
}

// resumeOn opens tab name on h and resumes answer id of convID there from
// the cursor from.
func resumeOn(t *testing.T, tc *testCluster, h *testHub, name, convID, id string, from int64) *tab {
	t.Helper()
	s := newTab(tc.user.ID, name)
	h.Register(s)
	t.Cleanup(func() { h.Detach(s) })
	if err := h.Subscribe(context.Background(), s, tc.user.ID, SubscribeRequest{ConversationID: convID,
		MessageID: id, LastSeq: &from}); err != nil {
		t.Fatalf("resume %s from %d on %s: %v", id, from, h.name, err)
	}
	return s
}
