package app

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"chatd/llm/fakeai"
)

// thinking joins the reasoning frames of one answer, checking that each
// continues the previous one exactly (rseq = previous rseq + byte length of
// text), and checks the done frame's rseq against what was delivered.
func thinking(t *testing.T, frames []frame, messageID string) string {
	t.Helper()
	var b strings.Builder
	for _, f := range frames {
		if f.MessageID != messageID {
			continue
		}
		switch f.Type {
		case "reasoning":
			if want := int64(b.Len() + len(f.Text)); f.RSeq != want {
				t.Fatalf("reasoning rseq %d after %d bytes + %d: gap or duplicate (%s)", f.RSeq, b.Len(), len(f.Text), f.raw)
			}
			b.WriteString(f.Text)
		case "done":
			if f.RSeq != int64(b.Len()) {
				t.Fatalf("done rseq %d, but %d bytes of reasoning were delivered", f.RSeq, b.Len())
			}
		}
	}
	return b.String()
}

// TestReasoningTwoTabs: a reasoning model's thinking and its answer reach
// the sending tab and a tab that joins mid-reasoning byte for byte, as
// separate streams with their own cursors; the thinking is stored apart
// from the answer and never sent upstream in the next prompt.
func TestReasoningTwoTabs(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"reasoning_content", "reasoning"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			u := e.register(t)
			a := e.dial(t, u)
			ack := a.start("think [[fake tokens=40 reasoning=40 delay=3ms reasoning_key=" + key + "]]")
			early := a.until(func(f frame) bool { return f.Type == "reasoning" && f.RSeq > 30 })
			b := e.dial(t, u)
			b.write(map[string]any{"type": "subscribe", "id": "j", "conversationId": ack.ConversationID})
			fa := append(early, a.until(isDone(ack.MessageID))...)
			fb := b.until(isDone(ack.MessageID))
			cfg := fakeai.Config{Tokens: 40, Reasoning: 40}
			for name, frames := range map[string][]frame{"sender": fa, "joiner": fb} {
				text, done := answer(t, frames, ack.MessageID)
				if r := thinking(t, frames, ack.MessageID); r != fakeai.ExpectedReasoning(cfg) || text != fakeai.ExpectedText(cfg) {
					t.Fatalf("%s tab: reasoning %q text %q", name, r, text)
				}
				if done.Status != "complete" {
					t.Fatalf("%s tab: done %s", name, done.raw)
				}
			}
			m := e.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
			if m.Reasoning != fakeai.ExpectedReasoning(cfg) || m.Content != fakeai.ExpectedText(cfg) {
				t.Fatalf("stored reasoning %q content %q", m.Reasoning, m.Content)
			}

			a.write(sendFrame("s2", ack.ConversationID, "and now? [[fake tokens=2]]"))
			next := a.until(func(f frame) bool { return f.Type == "ack" })
			a.until(isDone(next[len(next)-1].MessageID))
			rec, _ := e.fake.LastRequest()
			for _, msg := range rec.Messages {
				if strings.Contains(msg.Content, "step by step") || strings.Contains(string(rec.Body), `"reasoning_content":`) {
					t.Fatalf("reasoning was sent upstream again: %s", rec.Body)
				}
			}
			if len(rec.Messages) != 3 || rec.Messages[1].Content != m.Content {
				t.Fatalf("second prompt %+v", rec.Messages)
			}
		})
	}
}

// TestReasoningResume: a tab that lost its connection resumes the
// reasoning and the text from its two cursors, while the answer runs (still
// thinking, and answering) and after it ended: no gap, no duplicate.
func TestReasoningResume(t *testing.T) {
	t.Parallel()
	cfg := fakeai.Config{Tokens: 60, Reasoning: 60}
	tests := []struct {
		name      string
		cut       func(frame) bool // where the first connection is dropped
		afterDone bool
	}{
		{"while thinking", func(f frame) bool { return f.Type == "reasoning" && f.RSeq > 40 }, false},
		{"while answering", func(f frame) bool { return f.Type == "delta" && f.Seq > 30 }, false},
		{"after the end", func(f frame) bool { return f.Type == "reasoning" && f.RSeq > 40 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			u := e.register(t)
			a := e.dial(t, u)
			ack := a.start("resume [[fake tokens=60 reasoning=60 delay=3ms]]")
			before := a.until(tt.cut)
			haveText, _ := answer(t, before, ack.MessageID)
			haveThought := thinking(t, before, ack.MessageID)
			a.c.CloseNow()
			if tt.afterDone {
				waitFor(t, "the answer to end", func() bool { return e.app.Hub().ActiveMessageID(ack.ConversationID) == "" })
			}
			b := e.dial(t, u)
			b.write(map[string]any{"type": "subscribe", "id": "r", "conversationId": ack.ConversationID,
				"messageId": ack.MessageID, "lastSeq": len(haveText), "lastReasoningSeq": len(haveThought)})
			after := live(b.until(isDone(ack.MessageID)))
			if after[0].Type != "ack" {
				t.Fatalf("resume began with %s", after[0].raw)
			}
			text := haveText + joinFrom(t, after, "delta", ack.MessageID, int64(len(haveText)))
			thought := haveThought + joinFrom(t, after, "reasoning", ack.MessageID, int64(len(haveThought)))
			if text != fakeai.ExpectedText(cfg) || thought != fakeai.ExpectedReasoning(cfg) {
				t.Fatalf("resumed text %q reasoning %q", text, thought)
			}
		})
	}
}

// joinFrom joins frames of one type of an answer that must continue a
// stream from offset from exactly.
func joinFrom(t *testing.T, frames []frame, typ, messageID string, from int64) string {
	t.Helper()
	var b strings.Builder
	for _, f := range frames {
		if f.MessageID != messageID || f.Type != typ {
			continue
		}
		cursor := f.Seq
		if typ == "reasoning" {
			cursor = f.RSeq
		}
		if want := from + int64(b.Len()+len(f.Text)); cursor != want {
			t.Fatalf("%s cursor %d, want %d: gap or duplicate (%s)", typ, cursor, want, f.raw)
		}
		b.WriteString(f.Text)
	}
	return b.String()
}

// TestReasoningBadCursor: a reasoning cursor past the reasoning, or inside
// a character, is refused with bad_seq.
func TestReasoningBadCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	ack := a.start("[[fake tokens=3 reasoning=12]] q")
	frames := a.until(isDone(ack.MessageID))
	thought := thinking(t, frames, ack.MessageID)
	inside := int64(strings.Index(thought, "中") + 1)
	for _, rseq := range []int64{int64(len(thought) + 1), inside} {
		a.write(map[string]any{"type": "subscribe", "id": "bad", "conversationId": ack.ConversationID,
			"messageId": ack.MessageID, "lastSeq": 0, "lastReasoningSeq": rseq})
		if f := a.expect("error"); f.Code != "bad_seq" {
			t.Fatalf("rseq %d: %s", rseq, f.raw)
		}
	}
}

// TestReasoningCancel: cancelling while the model is still thinking ends
// the answer as cancelled for every tab, with the reasoning so far stored
// exactly as it was delivered, and the upstream request aborted.
func TestReasoningCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a, b := e.dial(t, u), e.dial(t, u)
	ack := a.start("stop thinking [[fake tokens=10 reasoning=1000 delay=5ms]]")
	b.write(map[string]any{"type": "subscribe", "id": "j", "conversationId": ack.ConversationID})
	early := a.until(func(f frame) bool { return f.Type == "reasoning" && f.RSeq > 20 })
	a.write(map[string]any{"type": "cancel", "id": "c", "conversationId": ack.ConversationID})
	fa := append(early, a.until(isDone(ack.MessageID))...)
	fb := b.until(isDone(ack.MessageID))
	ra, rb := thinking(t, fa, ack.MessageID), thinking(t, fb, ack.MessageID)
	ta, done := answer(t, fa, ack.MessageID)
	if done.Status != "cancelled" || ta != "" || ra == "" || ra != rb {
		t.Fatalf("done %s, text %q, reasoning A %q B %q", done.raw, ta, ra, rb)
	}
	if !strings.HasPrefix(fakeai.ExpectedReasoning(fakeai.Config{Reasoning: 1000}), ra) {
		t.Fatalf("reasoning %q is not a prefix of the upstream's", ra)
	}
	m := e.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
	if m.Reasoning != ra || m.Status != "cancelled" {
		t.Fatalf("stored %q (%s), delivered %q", m.Reasoning, m.Status, ra)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := e.fake.WaitAbort(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReasoningSSEEventIDs: over SSE, reasoning frames carry ids
// "<messageId>:<seq>/<rseq>", and a reconnect with that Last-Event-ID, or
// with the old form "<seq>/<rseq>", continues both streams exactly.
func TestReasoningSSEEventIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a := e.dial(t, u)
	ack := a.start("sse [[fake tokens=5 reasoning=8]]")
	frames := a.until(isDone(ack.MessageID))
	text, _ := answer(t, frames, ack.MessageID)
	thought := thinking(t, frames, ack.MessageID)

	cut := strings.Index(thought, "step")
	for _, lastEventID := range []string{ack.MessageID + ":0/" + itoa(cut), "0/" + itoa(cut)} {
		func() {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/conversations/"+ack.ConversationID+"/stream?messageId="+ack.MessageID, nil)
			req.Header.Set("Authorization", "Bearer "+u.Token)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Last-Event-ID", lastEventID)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d after %q", res.StatusCode, lastEventID)
			}
			var ids, data []string
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if id, ok := strings.CutPrefix(line, "id: "); ok {
					ids = append(ids, id)
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					data = append(data, d)
					if strings.Contains(d, `"type":"done"`) {
						break
					}
				}
			}
			var frs []frame
			for _, d := range data {
				frs = append(frs, decodeFrame(t, d))
			}
			rest := joinFrom(t, frs, "reasoning", ack.MessageID, int64(cut))
			if thought[:cut]+rest != thought || joinFrom(t, frs, "delta", ack.MessageID, 0) != text {
				t.Fatalf("SSE resume after %q gave reasoning %q, frames %v", lastEventID, rest, data)
			}
			m := ack.MessageID + ":"
			want := []string{m + "0/" + itoa(len(thought)), m + itoa(len(text)) + "/" + itoa(len(thought)), m + "done"}
			if strings.Join(ids, " ") != strings.Join(want, " ") {
				t.Fatalf("event ids %q after %q, want %q", ids, lastEventID, want)
			}
		}()
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestSurrogatePairsAcrossChunks (issue 10 item 21): an upstream that cuts
// emoji inside their UTF-16 surrogate pairs (`\ud83d` ending one chunk,
// `\ude42` starting the next) still gives the emoji, not two U+FFFD, in the
// live deltas of two tabs and in the stored answer.
func TestSurrogatePairsAcrossChunks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	a, b := e.dial(t, u), e.dial(t, u)
	ack := a.start("emoji [[fake tokens=24 surrogates=true delay=10ms]]")
	b.write(map[string]any{"type": "subscribe", "id": "j", "conversationId": ack.ConversationID})
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 24})
	for name, cl := range map[string]*client{"sender": a, "follower": b} {
		text, done := answer(t, cl.until(isDone(ack.MessageID)), ack.MessageID)
		if text != want || done.Status != "complete" {
			t.Fatalf("%s tab: %q (%s), want %q", name, text, done.Status, want)
		}
		if strings.ContainsRune(text, '\uFFFD') {
			t.Fatalf("%s tab got replacement characters: %q", name, text)
		}
	}
	if m := e.thread(t, u, ack.ConversationID).message(t, ack.MessageID); m.Content != want || !strings.Contains(m.Content, "🙂") {
		t.Fatalf("stored %q, want %q", m.Content, want)
	}
}
