package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestCancelFromOtherTab: the second tab stops the first tab's answer; the
// upstream sees the abort; both tabs get one done, cancelled; the partial
// text is stored. It runs on both stores.
func TestCancelFromOtherTab(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "mongo"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mongo: store == "mongo"})
			u := e.register(t)
			a, b := e.dial(t, u), e.dial(t, u)
			ack := a.start("stop me [[fake tokens=4000 delay=10ms]]") // 40 s: still running at the cancel
			b.write(map[string]any{"type": "subscribe", "id": "s", "conversationId": ack.ConversationID})
			seenB := b.until(func(f frame) bool { return f.Type == "delta" })

			b.write(map[string]any{"type": "cancel", "id": "c", "conversationId": ack.ConversationID})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := e.fake.WaitAbort(ctx); err != nil {
				t.Fatalf("the upstream never saw the abort: %v", err)
			}
			fa := live(a.until(isDone(ack.MessageID)))
			fb := live(append(seenB, b.until(isDone(ack.MessageID))...))
			ta, da := answer(t, fa, ack.MessageID)
			tb, db := answer(t, fb, ack.MessageID)
			if da.Status != "cancelled" || db.Status != "cancelled" {
				t.Fatalf("done frames %s / %s", da.raw, db.raw)
			}
			full := fakeai.ExpectedText(fakeai.Config{Tokens: 4000})
			if ta == "" || ta != tb || !strings.HasPrefix(full, ta) || ta == full {
				t.Fatalf("partial texts differ or are not a strict prefix: %q / %q", ta, tb)
			}
			// Exactly one done each.
			a.quiet(100 * time.Millisecond)
			for len(b.frames) > 0 {
				if f := <-b.frames; f.Type == "done" {
					t.Fatalf("second done: %s", f.raw)
				}
			}
			stored := e.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
			if stored.Status != persistence.StatusCancelled || stored.Content != ta {
				t.Fatalf("stored %q (%s), want %q (cancelled)", stored.Content, stored.Status, ta)
			}
			// Cancel is idempotent.
			a.write(map[string]any{"type": "cancel", "id": "again", "conversationId": ack.ConversationID})
			if f := a.expect("ack"); string(f.ID) != `"again"` {
				t.Fatalf("second cancel: %s", f.raw)
			}
		})
	}
}

// TestRegenerateMidStream cancels the running answer and starts a sibling;
// no token of the old answer reaches the new one; the tree is visible over REST.
func TestRegenerateMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	// The first answer hangs after 30 tokens (times=1: the regenerated one
	// does not), so it is still running at the regenerate however slow the
	// machine; it ran 3 s before, which a loaded machine could outlast.
	ack := a.start("again please [[fake tokens=300 delay=10ms fault=hang_mid after=30 times=1]]")
	seen := a.until(func(f frame) bool { return f.Type == "delta" })

	a.write(map[string]any{"type": "regenerate", "id": "rg", "conversationId": ack.ConversationID})
	frames := live(append(seen, a.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"rg"` })...))
	oldText, oldDone := answer(t, frames, ack.MessageID)
	if oldDone.Status != "cancelled" {
		t.Fatalf("old answer ended %q before the regenerate ack", oldDone.Status)
	}
	re := frames[len(frames)-1]
	if re.MessageID == ack.MessageID || re.UserMessageID != ack.UserMessageID {
		t.Fatalf("regenerate ack %s", re.raw)
	}
	rest := live(a.until(isDone(re.MessageID)))
	if rest[0].Type != "message" || rest[0].stored(t).ParentID != ack.UserMessageID {
		t.Fatalf("new answer announced as %s", rest[0].raw)
	}
	for _, f := range rest {
		if f.MessageID == ack.MessageID {
			t.Fatalf("a frame of the old answer after the regenerate: %s", f.raw)
		}
	}
	newText, newDone := answer(t, rest, re.MessageID)
	if newDone.Status != "complete" || newText != fakeai.ExpectedText(fakeai.Config{Tokens: 300}) {
		t.Fatalf("new answer %q (%s)", newText, newDone.Status)
	}

	th := e.thread(t, u, ack.ConversationID)
	old, fresh := th.message(t, ack.MessageID), th.message(t, re.MessageID)
	if old.ParentID != ack.UserMessageID || fresh.ParentID != ack.UserMessageID {
		t.Fatalf("answers are not siblings: %s / %s", old.ParentID, fresh.ParentID)
	}
	if old.Status != persistence.StatusCancelled || old.Content != oldText {
		t.Fatalf("old answer stored as %q (%s)", old.Content, old.Status)
	}
	if fresh.Status != persistence.StatusComplete {
		t.Fatalf("new answer stored as %s", fresh.Status)
	}

	// Regenerating a finished answer by id makes a third sibling.
	a.write(map[string]any{"type": "regenerate", "id": "rg2", "conversationId": ack.ConversationID, "messageId": ack.MessageID})
	third := live(a.until(func(f frame) bool { return f.Type == "ack" }))
	a.until(isDone(third[len(third)-1].MessageID))
	siblings := 0
	for _, m := range e.thread(t, u, ack.ConversationID).Messages {
		if m.ParentID == ack.UserMessageID {
			siblings++
		}
	}
	if siblings != 3 {
		t.Fatalf("%d answers under the user message, want 3", siblings)
	}
}

// TestEditBranch: a send with parentMessageId makes a sibling user message
// (an edit) whose answer sees only its own branch.
func TestEditBranch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	first := a.start("first question")
	a.until(isDone(first.MessageID))
	a.write(map[string]any{"type": "send", "id": "2", "conversationId": first.ConversationID, "content": "second question"})
	second := live(a.until(func(f frame) bool { return f.Type == "ack" }))
	secondAck := second[len(second)-1]
	a.until(isDone(secondAck.MessageID))

	// Edit the second question: same parent (the first answer).
	a.write(map[string]any{"type": "send", "id": "3", "conversationId": first.ConversationID,
		"content": "edited second question", "parentMessageId": first.MessageID})
	edit := live(a.until(func(f frame) bool { return f.Type == "ack" }))
	editAck := edit[len(edit)-1]
	a.until(isDone(editAck.MessageID))

	th := e.thread(t, u, first.ConversationID)
	if got := th.message(t, editAck.UserMessageID).ParentID; got != first.MessageID {
		t.Fatalf("edited message parent %s, want %s", got, first.MessageID)
	}
	if got := th.message(t, secondAck.UserMessageID).ParentID; got != first.MessageID {
		t.Fatalf("original message parent %s", got)
	}
	req, _ := e.fake.LastRequest()
	var contents []string
	for _, m := range req.Messages {
		contents = append(contents, m.Content)
	}
	joined := strings.Join(contents, "|")
	if strings.Contains(joined, "second question|") && !strings.Contains(joined, "edited") || strings.Contains(joined, "|second question") {
		t.Fatalf("the edited branch's prompt includes the other branch: %q", joined)
	}
	if !strings.HasPrefix(joined, "first question|") || !strings.HasSuffix(joined, "edited second question") {
		t.Fatalf("prompt %q", joined)
	}
}

// TestSameClientMessageID: the same clientMessageId twice stores one user
// message and starts one answer.
func TestSameClientMessageID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	send := map[string]any{"type": "send", "id": "1", "content": "once [[fake tokens=50 delay=5ms]]", "clientMessageId": "c-123"}
	a.write(send)
	first := live(a.until(func(f frame) bool { return f.Type == "ack" }))
	ack := first[len(first)-1]
	send["id"], send["conversationId"] = "2", ack.ConversationID
	a.write(send)
	second := live(a.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"2"` }))
	again := second[len(second)-1]
	if again.UserMessageID != ack.UserMessageID || again.MessageID != ack.MessageID {
		t.Fatalf("repeated send acked %s, first %s", again.raw, ack.raw)
	}
	a.until(isDone(ack.MessageID))
	if n := e.fake.Requests(); n != 1 {
		t.Fatalf("%d upstream requests, want 1", n)
	}
	if msgs := e.thread(t, u, ack.ConversationID).Messages; len(msgs) != 2 {
		t.Fatalf("%d messages stored, want 2", len(msgs))
	}
	// A retry of the first send as it was (no conversation id) creates no
	// second conversation.
	delete(send, "conversationId")
	send["id"] = "3"
	a.write(send)
	third := live(a.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"3"` }))
	if got := third[len(third)-1]; got.ConversationID != ack.ConversationID || got.UserMessageID != ack.UserMessageID {
		t.Fatalf("retry acked %s", got.raw)
	}
	var page struct{ Conversations []persistence.Conversation }
	e.rest(t, u.Token, http.MethodGet, "/api/conversations", nil, http.StatusOK, &page)
	if len(page.Conversations) != 1 {
		t.Fatalf("%d conversations after a retried first send, want 1", len(page.Conversations))
	}
}
