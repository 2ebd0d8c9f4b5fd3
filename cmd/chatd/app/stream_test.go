package app

import (
	"net/http"
	"testing"

	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestRawSession follows a session as a person with wscat would type it:
// Bearer upgrade, send, then ack, message frames, deltas and done, with the
// text equal, byte for byte, to what the fake upstream sent (including
// multi-byte characters split across network writes).
func TestRawSession(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "mongo"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mongo: store == "mongo"})
			u := e.register(t)
			cl := e.dial(t, u)

			cl.write(`{"type":"send","id":"a1","content":"Hello there [[fake tokens=40 split=true mode=markdown]]"}`)
			frames := cl.until(func(f frame) bool { return f.Type == "done" })
			if frames[0].Type != "ack" {
				t.Fatalf("first frame %s, want the ack", frames[0].raw)
			}
			var ack, conv frame
			var msgs []persistence.Message
			for _, f := range frames {
				switch f.Type {
				case "ack":
					ack = f
				case "conversation":
					conv = f
				case "message":
					if ack.Type == "" {
						t.Fatalf("message frame before the ack: %s", f.raw)
					}
					msgs = append(msgs, f.stored(t))
				}
			}
			if conv.Action != "created" || conv.Conversation == nil || conv.Conversation.ID != ack.ConversationID {
				t.Fatalf("conversation frame %s", conv.raw)
			}
			if string(ack.ID) != `"a1"` || !persistence.ValidID(ack.ConversationID) {
				t.Fatalf("ack %s", ack.raw)
			}
			if len(msgs) != 2 || msgs[0].Role != persistence.RoleUser || msgs[1].Role != persistence.RoleAssistant ||
				msgs[0].ID != ack.UserMessageID || msgs[1].ID != ack.MessageID || msgs[1].ParentID != msgs[0].ID ||
				msgs[1].Status != persistence.StatusStreaming {
				t.Fatalf("message frames: %+v", msgs)
			}
			text, done := answer(t, frames, ack.MessageID)
			want := fakeai.ExpectedText(fakeai.Config{Tokens: 40, Mode: fakeai.ModeMarkdown})
			if text != want {
				t.Fatalf("streamed text differs from the upstream's:\n got %q\nwant %q", text, want)
			}
			if done.Status != "complete" || done.FinishReason != "stop" || done.Usage == nil || done.Usage.CompletionTokens != 40 {
				t.Fatalf("done %s", done.raw)
			}
			deltas := 0
			for _, f := range frames {
				if f.Type == "delta" {
					deltas++
				}
			}
			if deltas < 2 {
				t.Fatalf("only %d delta frames: the answer was not streamed", deltas)
			}

			// The upstream request carries the generation id.
			if rec, ok := e.fake.LastRequest(); !ok || !persistence.ValidID(rec.Header.Get("X-Request-ID")) || !rec.IncludeUsage {
				t.Fatalf("upstream request headers %v, include_usage %v", rec.Header, rec.IncludeUsage)
			}

			// The stored answer is final as soon as done arrived.
			th := e.thread(t, u, ack.ConversationID)
			stored := th.message(t, ack.MessageID)
			if stored.Content != want || stored.Status != persistence.StatusComplete || stored.Usage == nil {
				t.Fatalf("stored answer %+v", stored)
			}
			if th.ActiveMessageID != "" {
				t.Fatalf("activeMessageId %q after done", th.ActiveMessageID)
			}
			// The automatic title reaches the tab.
			title := cl.until(func(f frame) bool { return f.Type == "conversation" && f.Conversation.Title != "" })
			if got := title[len(title)-1].Conversation.Title; got != "Title: Hello there" {
				t.Fatalf("title %q", got)
			}
		})
	}
}

// TestPingPong checks the client ping frame and that unknown ids are echoed.
func TestPingPong(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cl := e.dial(t, e.register(t))
	cl.write(`{"type":"ping","id":7}`)
	if f := cl.expect("pong"); string(f.ID) != "7" {
		t.Fatalf("pong %s", f.raw)
	}
	cl.write(`{"type":"ping"}`)
	cl.expect("pong")
}

// TestSendingTabLeaves closes the tab that asked mid-answer: the answer
// still completes and is stored.
func TestSendingTabLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	cl := e.dial(t, u)
	ack := cl.start("leave early [[fake tokens=30 delay=20ms]]")
	cl.until(func(f frame) bool { return f.Type == "delta" })
	cl.c.CloseNow()

	waitFor(t, "the answer to complete", func() bool {
		var th thread
		e.rest(t, u.Token, http.MethodGet, "/api/conversations/"+ack.ConversationID, nil, http.StatusOK, &th)
		for _, m := range th.Messages {
			if m.ID == ack.MessageID && m.Status == persistence.StatusComplete {
				return m.Content == fakeai.ExpectedText(fakeai.Config{Tokens: 30})
			}
		}
		return false
	})
	if n := e.fake.Aborts(); n != 0 {
		t.Fatalf("the upstream saw %d aborts; closing the tab must not stop the answer", n)
	}
}

// TestGenerationRunning refuses a second send while an answer runs.
func TestGenerationRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	cl := e.dial(t, u)
	ack := cl.start("slow [[fake tokens=200 delay=20ms]]") // 4 s (was 1 s): still running at the second send
	cl.write(sendFrame("s2", ack.ConversationID, "again"))
	f := cl.until(func(f frame) bool { return f.Type == "error" })
	if last := f[len(f)-1]; last.Code != "generation_running" || string(last.ID) != `"s2"` {
		t.Fatalf("error %s", last.raw)
	}
	cl.until(isDone(ack.MessageID))
	if got := e.fake.Requests(); got != 1 {
		t.Fatalf("upstream requests: %d, want 1", got)
	}
	th := e.thread(t, u, ack.ConversationID)
	if len(th.Messages) != 2 {
		t.Fatalf("%d messages stored; the refused send must store nothing", len(th.Messages))
	}
}
