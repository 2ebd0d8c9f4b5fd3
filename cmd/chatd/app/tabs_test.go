package app

import (
	"fmt"
	"testing"

	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestTwoTabsFollowOneAnswer: a second tab subscribed before the answer
// starts receives exactly the same ordered frames as the sending tab.
func TestTwoTabsFollowOneAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a, b := e.dial(t, u), e.dial(t, u)
	a.write(map[string]any{"type": "send", "id": 1, "content": "first"})
	first := a.until(func(f frame) bool { return f.Type == "ack" })
	convID := first[len(first)-1].ConversationID
	a.until(isDone(first[len(first)-1].MessageID))

	b.write(map[string]any{"type": "subscribe", "id": "sub", "conversationId": convID})
	b.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"sub"` })
	a.write(sendFrame("s2", convID, "second [[fake tokens=60 delay=2ms split=true]]"))
	acked := a.until(func(f frame) bool { return f.Type == "ack" })
	ack := acked[len(acked)-1]
	fa := a.until(isDone(ack.MessageID))
	fb := b.until(isDone(ack.MessageID))
	ta, da := answer(t, fa, ack.MessageID)
	tb, db := answer(t, fb, ack.MessageID)
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 60})
	if ta != want || tb != want {
		t.Fatalf("tabs differ from the upstream:\nA %q\nB %q\nwant %q", ta, tb, want)
	}
	if da.raw != db.raw {
		t.Fatalf("done frames differ:\n%s\n%s", da.raw, db.raw)
	}
	if seqs(fa, ack.MessageID) != seqs(fb, ack.MessageID) {
		t.Fatalf("tabs saw different delta sequences:\n%s\n%s", seqs(fa, ack.MessageID), seqs(fb, ack.MessageID))
	}
	// B also saw the user message and the answer announced.
	var roles []persistence.Role
	for _, f := range fb {
		if f.Type == "message" {
			roles = append(roles, f.stored(t).Role)
		}
	}
	if fmt.Sprint(roles) != "[user assistant]" {
		t.Fatalf("second tab saw message frames %v", roles)
	}
}

func seqs(frames []frame, id string) string {
	s := ""
	for _, f := range frames {
		if f.MessageID == id && (f.Type == "delta" || f.Type == "done") {
			s += fmt.Sprintf("%d,", f.Seq)
		}
	}
	return s
}

// TestJoinMidStream: a tab that subscribes in the middle of an answer gets
// one catch-up delta with everything so far, then the live deltas, with no
// gap and no duplicate.
func TestJoinMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	// 5 s (was 0.4 s, which a stall under -race could let end before the
	// second tab subscribed: it then gets no done).
	ack := a.start("join me [[fake tokens=1000 delay=5ms]]")
	a.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 40 })

	b := e.dial(t, u)
	b.write(map[string]any{"type": "subscribe", "id": "j", "conversationId": ack.ConversationID})
	got := live(b.until(isDone(ack.MessageID)))
	if got[0].Type != "ack" || got[1].Type != "message" || got[1].stored(t).ID != ack.MessageID || got[2].Type != "delta" {
		t.Fatalf("catch-up began with %s, %s, %s", got[0].raw, got[1].raw, got[2].raw)
	}
	if got[2].Seq < 40 {
		t.Fatalf("catch-up delta has only %d bytes", got[2].Seq)
	}
	text, done := answer(t, got, ack.MessageID)
	if want := fakeai.ExpectedText(fakeai.Config{Tokens: 1000}); text != want || done.Status != "complete" {
		t.Fatalf("joined tab got %q (%s), want %q", text, done.Status, want)
	}
}

// TestResume: after a disconnect, subscribe with messageId and lastSeq
// returns exactly the missing text, while the answer runs and after it ended.
func TestResume(t *testing.T) {
	t.Parallel()
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 100})
	tests := []struct {
		name      string
		afterDone bool
	}{
		{"while running", false},
		{"after the end", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			u := e.register(t)
			a := e.dial(t, u)
			ack := a.start("resume [[fake tokens=100 delay=4ms]]")
			before := a.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 30 })
			have, _ := answer(t, before, ack.MessageID)
			lastSeq := before[len(before)-1].Seq
			a.c.CloseNow()

			if tt.afterDone {
				waitFor(t, "the answer to end", func() bool { return e.app.Hub().ActiveMessageID(ack.ConversationID) == "" })
			}
			b := e.dial(t, u)
			b.write(map[string]any{"type": "subscribe", "id": "r", "conversationId": ack.ConversationID,
				"messageId": ack.MessageID, "lastSeq": lastSeq})
			rest := live(b.until(isDone(ack.MessageID)))
			if rest[0].Type != "ack" {
				t.Fatalf("first frame %s", rest[0].raw)
			}
			var b2 []frame
			for _, f := range rest {
				if f.Type == "message" {
					t.Fatalf("a resume must not repeat the message frame: %s", f.raw)
				}
				b2 = append(b2, f)
			}
			// Prefix the text the tab already had, then check the seq chain.
			prefix := frame{Type: "delta", MessageID: ack.MessageID, Seq: lastSeq, Text: have}
			text, done := answer(t, append([]frame{prefix}, b2...), ack.MessageID)
			if text != want || done.Status != "complete" {
				t.Fatalf("resumed text %q (%s), want %q", text, done.Status, want)
			}
		})
	}
}

// TestResumeBadSeq refuses a lastSeq outside the answer.
func TestResumeBadSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	ack := a.start("short")
	a.until(isDone(ack.MessageID))
	a.write(map[string]any{"type": "subscribe", "id": "x", "conversationId": ack.ConversationID,
		"messageId": ack.MessageID, "lastSeq": 1 << 20})
	if f := a.expect("error"); f.Code != "bad_seq" || string(f.ID) != `"x"` {
		t.Fatalf("got %s", f.raw)
	}
}

// TestUnsubscribe stops a tab from receiving a conversation's frames.
func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a, b := e.dial(t, u), e.dial(t, u)
	ack := a.start("one")
	a.until(isDone(ack.MessageID))
	b.write(map[string]any{"type": "subscribe", "id": 1, "conversationId": ack.ConversationID})
	b.expect("ack")
	b.write(map[string]any{"type": "unsubscribe", "id": 2, "conversationId": ack.ConversationID})
	b.expect("ack")
	a.write(sendFrame("s", ack.ConversationID, "two"))
	second := a.until(func(f frame) bool { return f.Type == "ack" })
	a.until(isDone(second[len(second)-1].MessageID))
	// B receives only user-wide frames (the conversation moved up), never
	// the answer: the hub queued the answer's frames for its tabs before A
	// got its done, and B's pong is queued behind whatever B was given.
	b.write(map[string]any{"type": "ping", "id": 3})
	got := b.until(func(f frame) bool { return f.Type == "pong" })
	for _, f := range got[:len(got)-1] {
		if f.Type != "conversation" {
			t.Fatalf("unsubscribed tab got %s", f.raw)
		}
	}
}
