package hub

import (
	"context"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
)

// TestResumeEndedBeforeRunning: a subscribe resuming an answer that has
// ended while a later answer of the conversation runs gets the rest of the
// ended answer and its done first, then the running answer from its start,
// as the answers ran, then the running answer's next frames. Before, the
// running answer's catch-up came first: a client cut right after the
// ended answer's done (its last event says it has all of that answer) was
// sent the running answer from its start again, a duplicate.
func TestResumeEndedBeforeRunning(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	var calls atomic.Int32
	e := newEnv(t, Options{}, func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
		if calls.Add(1) == 1 {
			return say("first ", "answer")(ctx, req, onDelta)
		}
		return feed.script(ctx, req, onDelta)
	})
	tab := newSub("u")
	first := e.send(t, tab, "hi")
	tab.textUntilDone(t, first.MessageID, 0)
	second, err := e.h.Send(context.Background(), tab, "u", SendRequest{ConversationID: first.ConversationID, Content: "more"})
	if err != nil {
		t.Fatal(err)
	}
	feed <- "running "
	for got := ""; got != "running "; {
		if f := tab.next(t); f.Type == protocol.TypeDelta && f.MessageID == second.MessageID {
			got += decode(t, f).Text
		}
	}

	next := func(t *testing.T, sub *fakeSub, typ, messageID string) frame {
		t.Helper()
		f := sub.expect(t, typ)
		if id := f.MessageID + f.Message.ID; id != messageID {
			t.Fatalf("a %s frame of %s, want one of %s", typ, id, messageID)
		}
		return f
	}
	cases := []struct {
		name string
		seq  int64
		rest string // of the first answer
	}{
		{"cut inside the ended answer", int64(len("first ")), "answer"},
		{"cut before the ended answer's done", int64(len("first answer")), ""},
	}
	var subs []*fakeSub
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := newSub("u")
			subs = append(subs, sub)
			seq := tc.seq
			if err := e.h.Subscribe(context.Background(), sub, "u", SubscribeRequest{ConversationID: first.ConversationID,
				MessageID: first.MessageID, LastSeq: &seq}); err != nil {
				t.Fatal(err)
			}
			sub.expect(t, protocol.TypeAck)
			if tc.rest != "" {
				if d := next(t, sub, protocol.TypeDelta, first.MessageID); d.Text != tc.rest || d.Seq != int64(len("first answer")) {
					t.Fatalf("the ended answer's rest %q at %d, want %q", d.Text, d.Seq, tc.rest)
				}
			}
			if d := next(t, sub, protocol.TypeDone, first.MessageID); d.Seq != int64(len("first answer")) || d.Status != "complete" {
				t.Fatalf("the ended answer's done: %+v", d)
			}
			next(t, sub, protocol.TypeMessage, second.MessageID)
			if d := next(t, sub, protocol.TypeDelta, second.MessageID); d.Text != "running " {
				t.Fatalf("the running answer's catch-up %q, want its text from the start", d.Text)
			}
			sub.quiet(t)
		})
	}
	feed <- "on"
	close(feed)
	for _, sub := range subs {
		if text, _ := sub.textUntilDone(t, second.MessageID, int64(len("running "))); text != "on" {
			t.Fatalf("the running answer went on with %q, want %q", text, "on")
		}
	}
}
