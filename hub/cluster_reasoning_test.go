package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"chatd/hub/protocol"
)

// reasoningOf joins the reasoning frames of answer id that continue from
// rfrom, failing on a gap or a duplicate.
func reasoningOf(frames []*protocol.Frame, id string, rfrom int64) (string, error) {
	var b strings.Builder
	for _, f := range frames {
		if f.MessageID != id || f.Type != protocol.TypeReasoning {
			continue
		}
		rseq, text, err := reasoningOfFrame(f)
		if err != nil {
			return "", err
		}
		if want := rfrom + int64(b.Len()+len(text)); rseq != want || f.RSeq != want {
			return "", fmt.Errorf("rseq %d (frame %d), want %d", rseq, f.RSeq, want)
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

// TestClusterReasoning: an answer's reasoning running on A reaches a tab
// on B live and a tab joining on B mid-reasoning caught up, byte for byte;
// a tab resuming on C from both cursors gets exactly the rest of each.
func TestClusterReasoning(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "think first")
	run := a.model.next(t)
	run.say(t, "think:Hmm, ", "think:naïve ")
	onB.waitUntil(t, "reasoning on B", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		r, err := reasoningOf(fs, res.MessageID, 0)
		return err == nil && r == "Hmm, naïve "
	})
	late := tc.follow(t, b, "b2", conv.ID)
	rfrom := int64(len("Hmm, "))
	seq := int64(0)
	resumed := newTab(tc.user.ID, "c1")
	t.Cleanup(func() { c.Detach(resumed) })
	if err := c.Subscribe(context.Background(), resumed, tc.user.ID, SubscribeRequest{ConversationID: conv.ID,
		MessageID: res.MessageID, LastSeq: &seq, LastReasoningSeq: &rfrom}); err != nil {
		t.Fatal(err)
	}
	run.say(t, "think:🙂 done.", "The answer ", "is 42.")
	close(run.tokens)
	const thought, answer = "Hmm, naïve 🙂 done.", "The answer is 42."
	for _, s := range []struct {
		tab   *tab
		rfrom int64
	}{{onB, 0}, {late, 0}, {resumed, rfrom}} {
		s.tab.waitDone(t, res.MessageID)
		frames, _ := s.tab.snapshot()
		r, err := reasoningOf(frames, res.MessageID, s.rfrom)
		text, dones, err2 := answerOf(frames, res.MessageID, 0)
		if err != nil || err2 != nil || r != thought[s.rfrom:] || text != answer || dones != 1 {
			t.Fatalf("tab %s: reasoning %q (%v) text %q (%v) dones %d\n%s", s.tab.id, r, err, text, err2, dones, dump(frames))
		}
	}
	tc.waitUnlocked(t, conv.ID)
	if m := tc.message(t, res.MessageID); m.Reasoning != thought || m.Content != answer {
		t.Fatalf("stored reasoning %q content %q", m.Reasoning, m.Content)
	}
}

// TestClusterCatchUpDeltaRSeq: the delta a tab joining on B gets to catch
// up with an answer running on A carries the reasoning cursor, as the
// live deltas (and a local answer's catch-up) do: an SSE tab's event id is
// then "<messageId>:<seq>/<rseq>", so a reconnect right after it resumes
// the reasoning from there instead of being sent all of it again.
func TestClusterCatchUpDeltaRSeq(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "think first")
	run := a.model.next(t)
	run.say(t, "think:Hmm, ", "The ")
	onB.waitUntil(t, "text on B", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		text, _, err := answerOf(fs, res.MessageID, 0)
		return err == nil && text == "The "
	})
	late := tc.follow(t, b, "b2", conv.ID)
	run.say(t, "answer.")
	close(run.tokens)
	late.waitDone(t, res.MessageID)
	frames, _ := late.snapshot()
	const rseq = int64(len("Hmm, "))
	deltas := 0
	for _, f := range frames {
		if f.MessageID == res.MessageID && f.Type == protocol.TypeDelta {
			deltas++
			if f.RSeq != rseq || f.EventID() != fmt.Sprintf("%d/%d", f.Seq, rseq) {
				t.Fatalf("delta up to %d carries rseq %d (event id %q), want %d\n%s", f.Seq, f.RSeq, f.EventID(), rseq, dump(frames))
			}
		}
	}
	if deltas == 0 {
		t.Fatalf("no delta\n%s", dump(frames))
	}
}
