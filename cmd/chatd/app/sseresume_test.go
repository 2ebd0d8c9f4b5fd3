package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"chatd/llm/fakeai"
)

// streamEvents opens the event stream path as u (with Last-Event-ID, if
// any) and hands its events over the channel it returns, closed when the
// stream ends; cut ends the stream from the client's side, as a lost
// connection does.
func streamEvents(t *testing.T, e *env, u user, path, lastEventID string) (events <-chan sseEvent, cut func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+u.Token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET %s: %v %v", path, res, err)
	}
	out := make(chan sseEvent, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer res.Body.Close()
		var cur sseEvent
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && cur.name != "":
				out <- cur
				cur = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				cur.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				cur.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				if json.Unmarshal([]byte(line[len("data: "):]), &cur.data) != nil {
					cur.name = "undecodable " + line
				}
			}
		}
	}()
	cut = func() {
		cancel()
		<-done
	}
	t.Cleanup(cut)
	return out, cut
}

// TestEventsResumeAfterAnswerEnded: an event stream opened to resume one
// answer (GET /api/events?conversationId=&messageId=&lastSeq=, as an
// EventSource keeps its URL) that carried that answer to its end and then
// part of the next one, cut there, and opened again with the same URL and
// the Last-Event-ID of the last event it got, goes on exactly where it
// was: the rest of the next answer and its done, nothing of the first
// again, no text missing. Before, the event id was the seq alone: the
// stream could not tell which answer it was of, took the URL's cursor,
// sent the first answer again from there, and the next from where it
// happened to be.
func TestEventsResumeAfterAnswerEnded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	tab := e.dial(t, u)
	first := tab.start("the first answer [[fake tokens=5]]")
	tab.until(isDone(first.MessageID))
	path := "/api/events?conversationId=" + first.ConversationID + "&messageId=" + first.MessageID + "&lastSeq=0"

	events, cut := streamEvents(t, e, u, path, "")
	var got []sseEvent
	next := func(what string) sseEvent {
		t.Helper()
		ev, ok := <-events
		if !ok {
			t.Fatalf("the stream ended waiting for %s, after %+v", what, got)
		}
		got = append(got, ev)
		return ev
	}
	for ev := next("the first answer's done"); ev.name != "done"; ev = next("the first answer's done") {
	}
	const prompt = "the second answer [[fake tokens=40 delay=5ms]]"
	tab.write(sendFrame("second", first.ConversationID, prompt))
	ev := next("a delta of the second answer")
	for ev.name != "delta" {
		ev = next("a delta of the second answer")
	}
	second := ev.data.MessageID
	cut()
	tab.until(isDone(second)) // the second answer ends while the stream is away

	events, _ = streamEvents(t, e, u, path, ev.id)
	var again []sseEvent
	for ev := range events {
		again = append(again, ev)
		if ev.name == "done" && ev.data.MessageID == second {
			break
		}
	}
	for _, ev := range again {
		if ev.data.MessageID == first.MessageID {
			t.Fatalf("the first answer again after Last-Event-ID %q: %+v", got[len(got)-1].id, ev)
		}
	}
	text, done := answer(t, append(frames(got), frames(again)...), second)
	if want := fakeai.ExpectedText(fakeai.Config{Tokens: 40}); text != want || done.Status != "complete" {
		t.Fatalf("the second answer over the two streams: %q (%s), want %q", text, done.Status, want)
	}
}

// TestEventsResumeEndedWhileAnotherRuns: an event stream resuming an
// answer that has ended (messageId and lastSeq in the URL) while the next
// answer of the conversation runs carries the ended answer's rest and its
// done first, then the running answer; a client cut right after that done
// and back with its Last-Event-ID (<messageId>:done) gets the running
// answer once, from its start: across the two streams both answers are
// whole, nothing twice, nothing missing. Before, the hub caught the stream
// up with the running answer before the ended one's rest, so the first
// stream carried part of the running answer before the done, and the
// second sent it again from its start.
func TestEventsResumeEndedWhileAnotherRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	tab := e.dial(t, u)
	first := tab.start("the first answer [[fake tokens=5]]")
	tab.until(isDone(first.MessageID))
	tab.write(sendFrame("second", first.ConversationID, "the second answer [[fake tokens=400 delay=10ms]]"))
	running := tab.until(func(f frame) bool { return f.Type == "delta" && f.MessageID != first.MessageID })
	second := running[len(running)-1].MessageID

	path := "/api/events?conversationId=" + first.ConversationID + "&messageId=" + first.MessageID + "&lastSeq=0"
	events, cut := streamEvents(t, e, u, path, "")
	var got []sseEvent
	for ev := range events {
		got = append(got, ev)
		if ev.name == "done" || ev.data.MessageID == second && len(got) > 8 {
			break
		}
	}
	cut()
	last := got[len(got)-1]
	if last.name != "done" || last.data.MessageID != first.MessageID {
		t.Fatalf("the first stream, read to the first answer's done: %+v", got)
	}
	for _, ev := range got {
		if ev.data.MessageID == second {
			t.Fatalf("the running answer before the ended one's done: %+v", got)
		}
	}
	if text, _ := answer(t, frames(got), first.MessageID); text != fakeai.ExpectedText(fakeai.Config{Tokens: 5}) {
		t.Fatalf("the first answer over the stream: %q", text)
	}

	events, _ = streamEvents(t, e, u, path, last.id)
	var again []sseEvent
	for ev := range events {
		again = append(again, ev)
		if ev.name == "delta" && ev.data.MessageID == second && len(again) >= 3 {
			break
		}
	}
	text, _ := answer(t, append(frames(got), frames(again)...), second)
	if want := fakeai.ExpectedText(fakeai.Config{Tokens: 400}); text == "" || !strings.HasPrefix(want, text) {
		t.Fatalf("the running answer over the two streams: %q, want a start of %q", text, want)
	}
}
