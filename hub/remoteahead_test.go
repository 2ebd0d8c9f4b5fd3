package hub

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"chatd/hub/protocol"
)

// TestClusterResumeAheadCursorsChecked: a resume on an instance whose
// mirror of the answer (running on another) has not read up to the tab's
// cursors yet is acked, then its cursors are checked as a local resume's
// are once the mirror reaches them or the answer ends short of them: a
// reasoning cursor inside a character, or a text or reasoning cursor past
// the answer's end, gets bad_seq (then the close 1001, docs/protocol.md)
// and nothing of the answer, never reasoning cut inside a character nor a
// done shorter than the tab's cursor. Cursors within the answer get the
// rest of it and its done.
func TestClusterResumeAheadCursorsChecked(t *testing.T) {
	t.Parallel()
	const thought, answer = "Hmm, naïve ", "The answer is 42."
	for _, tc := range []struct {
		name        string
		seq, rseq   int64
		refused     bool
		wantText    string // refused false: the text after seq
		wantThought string // refused false: the reasoning after rseq
	}{
		{name: "reasoning cursor inside a character", seq: 0, rseq: int64(len("Hmm, na")) + 1, refused: true},
		{name: "text cursor past the end", seq: 900, rseq: int64(len(thought)), refused: true},
		{name: "reasoning cursor past the end", seq: 0, rseq: 900, refused: true},
		{name: "cursors within the answer", seq: int64(len("The ")), rseq: int64(len("Hmm, ")),
			wantText: answer[len("The "):], wantThought: thought[len("Hmm, "):]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := newTestCluster(t, "A", "C")
			a, c := cl.hubs[0], cl.hubs[1]
			conv := cl.conversation(t)
			res := cl.send(t, a, nil, conv.ID, "think first")
			run := a.model.next(t)
			run.say(t, "think:Hmm, ", "think:naïve ")

			// C mirrors nothing of the answer yet: the resume is parked
			// past what its mirror has read.
			resumed := newTab(cl.user.ID, "c1")
			t.Cleanup(func() { c.Detach(resumed) })
			seq, rseq := tc.seq, tc.rseq
			if err := c.Subscribe(context.Background(), resumed, cl.user.ID, SubscribeRequest{ConversationID: conv.ID,
				MessageID: res.MessageID, LastSeq: &seq, LastReasoningSeq: &rseq}); err != nil {
				t.Fatalf("resume: %v", err)
			}
			run.say(t, "The ", "answer ", "is 42.")
			close(run.tokens)
			// Another tab on C following to the done: C's mirror has
			// handled every frame of the answer by then.
			cl.follow(t, c, "c0", conv.ID).waitDone(t, res.MessageID)

			frames, closed := resumed.snapshot()
			if !tc.refused {
				r, err := reasoningOf(frames, res.MessageID, tc.rseq)
				text, dones, err2 := answerOf(frames, res.MessageID, tc.seq)
				if err != nil || err2 != nil || r != tc.wantThought || text != tc.wantText || dones != 1 || closed != 0 {
					t.Fatalf("reasoning %q (%v) text %q (%v) dones %d closed %d\n%s", r, err, text, err2, dones, closed, dump(frames))
				}
				return
			}
			refusals := 0
			for _, f := range frames {
				switch {
				case f.Type == protocol.TypeError && field(t, f, "code") == protocol.CodeBadSeq:
					refusals++
				case f.MessageID != res.MessageID:
				case f.Type == protocol.TypeReasoning:
					if _, text, err := reasoningOfFrame(f); err != nil || strings.ContainsRune(text, utf8.RuneError) {
						t.Fatalf("reasoning cut inside a character: %s (%v)", f.Data, err)
					}
				case f.Type == protocol.TypeDone:
					t.Fatalf("a done after a cursor it does not reach: %s\n%s", f.Data, dump(frames))
				}
			}
			if refusals != 1 || closed != protocol.CloseGoingAway {
				t.Fatalf("%d bad_seq refusals, closed %d; want one, then closed %d\n%s", refusals, closed, protocol.CloseGoingAway, dump(frames))
			}
		})
	}
}
