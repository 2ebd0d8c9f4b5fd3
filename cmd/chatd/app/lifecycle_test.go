package app

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestShutdownMidStream: shutting down (what SIGTERM triggers) ends a
// running answer as interrupted with its text stored, every tab gets its
// done, then sockets close with 1001. It runs on both stores.
func TestShutdownMidStream(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "mongo"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mongo: store == "mongo"})
			u := e.register(t)
			a, b := e.dial(t, u), e.dial(t, u)
			ack := a.start("long [[fake tokens=1000 delay=10ms]]")
			b.write(map[string]any{"type": "subscribe", "conversationId": ack.ConversationID})
			seenA := a.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 20 })

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := e.app.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			text, done := answer(t, live(append(seenA, a.until(isDone(ack.MessageID))...)), ack.MessageID)
			if done.Status != "interrupted" {
				t.Fatalf("done %s", done.raw)
			}
			if code, _ := done.doneError(); code != "shutdown" {
				t.Fatalf("done error code %q", code)
			}
			fb := b.until(isDone(ack.MessageID))
			if fb[len(fb)-1].Status != "interrupted" {
				t.Fatalf("second tab's done %s", fb[len(fb)-1].raw)
			}
			for _, cl := range []*client{a, b} {
				if got := cl.closeStatus(); got != websocket.StatusGoingAway {
					t.Fatalf("close status %d, want 1001", got)
				}
			}
			m, err := e.store.Message(ctx, u.ID, ack.MessageID)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != persistence.StatusInterrupted || m.Content != text || len(text) == 0 {
				t.Fatalf("stored %q (%s), streamed %q", m.Content, m.Status, text)
			}
			// After shutdown, new work is refused.
			res, err := http.Get(e.srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/readyz %d after shutdown", res.StatusCode)
			}
		})
	}
}

// TestGoroutinesReturn: after connections, answers and SSE streams end,
// the number of goroutines returns to where it was.
func TestGoroutinesReturn(t *testing.T) {
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.SendsPerMinute = 600 }})
	u := e.register(t)
	warm := e.dial(t, u)
	warm.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the warm-up connection to end", func() bool { return e.app.Hub().Connections(u.ID) == 0 })
	base := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		cl := e.dial(t, u)
		ack := cl.start(fmt.Sprintf("round %d [[fake tokens=20]]", i))
		cl.until(isDone(ack.MessageID))
		cl.c.Close(websocket.StatusNormalClosure, "bye")
		e.sse(t, u, http.MethodPost, "/api/conversations/"+ack.ConversationID+"/messages",
			`{"content":"over sse"}`, nil)
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name, id string
	data     frame
}

// sse calls a live route with Accept: text/event-stream and returns the
// events until the stream ends (or stop returns true).
func (e *env) sse(t *testing.T, u user, method, path, body string, header map[string]string, stop ...func(sseEvent) bool) ([]sseEvent, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+u.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, res
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				out = append(out, cur)
				if len(stop) > 0 && stop[0](cur) {
					return out, res
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			cur.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			cur.data = decodeFrame(t, line[len("data: "):])
		}
	}
	return out, res
}

func frames(events []sseEvent) []frame {
	var out []frame
	for _, ev := range events {
		out = append(out, ev.data)
	}
	return out
}

// TestSSEFallback: a generation started over SSE streams the same frames
// (with the answer's id and seq as event id, "<messageId>:<seq>", and
// "<messageId>:done" for its done), is seen live by a WebSocket tab, and
// resumes with Last-Event-ID, of that form and of the old one (the seq
// alone: a client from before it).
func TestSSEFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	convID := created.Conversation.ID
	tab := e.dial(t, u)
	tab.write(map[string]any{"type": "subscribe", "id": "s", "conversationId": convID})
	tab.expect("ack")

	events, res := e.sse(t, u, http.MethodPost, "/api/conversations/"+convID+"/messages",
		`{"content":"over http [[fake tokens=50 delay=2ms split=true]]","clientMessageId":"sse-1"}`, nil)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") || res.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", res.Header)
	}
	if len(events) < 4 || events[0].name != "ack" {
		t.Fatalf("events %+v", events)
	}
	ack := events[0].data
	for _, ev := range events {
		if ev.name != ev.data.Type {
			t.Fatalf("event name %q for a %s frame", ev.name, ev.data.Type)
		}
		if ev.name == "delta" && ev.id != ev.data.MessageID+":"+fmt.Sprint(ev.data.Seq) ||
			ev.name == "done" && ev.id != ev.data.MessageID+":done" {
			t.Fatalf("%s event id %q, message %s, seq %d", ev.name, ev.id, ev.data.MessageID, ev.data.Seq)
		}
	}
	text, done := answer(t, frames(events), ack.MessageID)
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 50})
	if text != want || done.Status != "complete" || events[len(events)-1].name != "done" {
		t.Fatalf("SSE text %q (%s), want %q", text, done.Status, want)
	}
	wsText, _ := answer(t, live(tab.until(isDone(ack.MessageID))), ack.MessageID)
	if wsText != want {
		t.Fatalf("the WebSocket tab saw %q", wsText)
	}

	// Resume after the end with Last-Event-ID: exactly the rest, then done.
	cut := int64(len(want) / 2)
	for !utf8Start(want, cut) {
		cut++
	}
	var got string
	var d frame
	for _, lastEventID := range []string{ack.MessageID + ":" + fmt.Sprint(cut), fmt.Sprint(cut)} {
		rest, _ := e.sse(t, u, http.MethodGet, "/api/conversations/"+convID+"/stream?messageId="+ack.MessageID, "",
			map[string]string{"Last-Event-ID": lastEventID})
		prefix := frame{Type: "delta", MessageID: ack.MessageID, Seq: cut, Text: want[:cut]}
		got, d = answer(t, append([]frame{prefix}, frames(rest)...), ack.MessageID)
		if got != want || d.Status != "complete" {
			t.Fatalf("resumed with Last-Event-ID %q: %q", lastEventID, got)
		}
	}

	// A WebSocket-started answer resumes over SSE while it runs.
	// 5 s (was 1 s, which a stall under -race could let end before the
	// stream opened: 204, nothing to follow).
	tab.write(sendFrame("w", convID, "from the socket [[fake tokens=1000 delay=5ms]]"))
	wsAck := live(tab.until(func(f frame) bool { return f.Type == "ack" }))
	id := wsAck[len(wsAck)-1].MessageID
	tab.until(func(f frame) bool { return f.Type == "delta" })
	follow, _ := e.sse(t, u, http.MethodGet, "/api/conversations/"+convID+"/stream", "", nil)
	got, d = answer(t, frames(follow), id)
	if got != fakeai.ExpectedText(fakeai.Config{Tokens: 1000}) || d.Status != "complete" {
		t.Fatalf("SSE follow of a socket answer: %q (%s)", got, d.Status)
	}

	// The same client message id over SSE again starts nothing.
	before := e.fake.Requests()
	e.sse(t, u, http.MethodPost, "/api/conversations/"+convID+"/messages", `{"content":"again","clientMessageId":"sse-1"}`, nil)
	if e.fake.Requests() != before {
		t.Fatalf("a repeated clientMessageId started an answer")
	}
	// Nothing running: 204.
	if _, res := e.sse(t, u, http.MethodGet, "/api/conversations/"+convID+"/stream", "", nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("stream with nothing running: %d", res.StatusCode)
	}
}

// TestSSECancelAndErrors covers the SSE cancel route and its refusals.
func TestSSECancelAndErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u, other := e.register(t), e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	convID := created.Conversation.ID

	// Without Accept: text/event-stream, 202 and the ids. The answer hangs
	// after 20 tokens (times=1: the regenerated one below does not), so it
	// still runs at the refusal of a second send and at the cancel, where
	// it ran 1 s, which a stall under -race could outlast.
	var started struct{ ConversationID, UserMessageID, MessageID string }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations/"+convID+"/messages",
		map[string]string{"content": "background [[fake tokens=200 delay=5ms fault=hang_mid after=20 times=1]]"}, http.StatusAccepted, &started)
	if started.MessageID == "" {
		t.Fatalf("202 body %+v", started)
	}
	e.rest(t, other.Token, http.MethodPost, "/api/conversations/"+convID+"/cancel", nil, http.StatusNotFound, nil)
	e.rest(t, u.Token, http.MethodPost, "/api/conversations/"+convID+"/messages",
		map[string]string{"content": "second"}, http.StatusConflict, nil)
	e.rest(t, u.Token, http.MethodPost, "/api/conversations/"+convID+"/cancel", nil, http.StatusNoContent, nil)
	waitFor(t, "the cancelled answer to be stored", func() bool {
		m, err := e.store.Message(context.Background(), u.ID, started.MessageID)
		return err == nil && m.Status == persistence.StatusCancelled
	})
	e.rest(t, u.Token, http.MethodPost, "/api/conversations/nope/messages", map[string]string{"content": "x"}, http.StatusBadRequest, nil)
	e.rest(t, u.Token, http.MethodPost, "/api/conversations/"+convID+"/messages", map[string]string{"content": ""}, http.StatusBadRequest, nil)
	e.rest(t, "", http.MethodPost, "/api/conversations/"+convID+"/messages", map[string]string{"content": "x"}, http.StatusUnauthorized, nil)
	if _, res := e.sse(t, other, http.MethodGet, "/api/conversations/"+convID+"/stream?messageId="+started.MessageID, "", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("another user's stream: %d", res.StatusCode)
	}
	// Regenerate over SSE makes a sibling.
	events, _ := e.sse(t, u, http.MethodPost, "/api/conversations/"+convID+"/regenerate", `{}`, nil)
	ack := live(frames(events))[0]
	if ack.Type != "ack" || ack.UserMessageID != started.UserMessageID {
		t.Fatalf("regenerate ack %+v", ack)
	}
	if _, d := answer(t, frames(events), ack.MessageID); d.Status != "complete" {
		t.Fatalf("regenerated answer %s", d.raw)
	}
}

func utf8Start(s string, i int64) bool { return i >= int64(len(s)) || s[i]&0xC0 != 0x80 }

// TestMetrics: /metrics needs the token (or an allowed address) and
// exports the live channel's metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Metrics.Token = "metrics-secret" }})
	u := e.register(t)
	cl := e.dial(t, u)
	ack := cl.start("measure me")
	cl.until(isDone(ack.MessageID))
	cl.write(sendFrame("f", ack.ConversationID, "fail [[fake fault=400]]"))
	failed := live(cl.until(func(f frame) bool { return f.Type == "ack" }))
	cl.until(isDone(failed[len(failed)-1].MessageID))
	e.rest(t, "", http.MethodGet, "/metrics", nil, http.StatusForbidden, nil)
	names := []string{
		"chatd_ws_connections", "chatd_generations_active", `chatd_generations_total{model="fake-mini",status="complete"}`,
		`chatd_time_to_first_token_seconds_bucket{model="fake-mini"`, "chatd_tokens_per_second_bucket",
		"chatd_deltas_sent_total", "chatd_delta_frames_encoded_total",
		`chatd_slow_client_disconnects_total{reason="queue_full",transport="websocket"}`,
		`chatd_slow_client_disconnects_total{reason="write_timeout",transport="sse"}`,
		"chatd_ws_connections_refused_total",
		"chatd_writer_flush_seconds_bucket", "chatd_writer_flush_failures_total", "chatd_writer_messages",
		`chatd_upstream_errors_total{kind="bad_request",model="fake-mini"}`, "chatd_http_requests_total",
	}
	// An answer is counted once its done is sent, so the failed one's
	// count may come a moment after its done: read until every metric is
	// there, or the test's time is up.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		body := scrapeMetrics(t, e.srv.URL, "metrics-secret")
		var missing []string
		for _, name := range names {
			if !strings.Contains(body, name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("metrics missing: %s", strings.Join(missing, ", "))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// scrapeMetrics reads /metrics with token.
func scrapeMetrics(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body := new(strings.Builder)
	if _, err := bufio.NewReader(res.Body).WriteTo(body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %v", res.StatusCode, err)
	}
	return body.String()
}

// TestSSEEvents: GET /api/events follows the user's conversation frames and
// one conversation's answers for as long as it is open; logout ends it.
func TestSSEEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	convID := created.Conversation.ID

	type result struct {
		events []sseEvent
		res    *http.Response
	}
	got := make(chan result, 1)
	go func() {
		ev, res := e.sse(t, u, http.MethodGet, "/api/events?conversationId="+convID, "", nil)
		got <- result{ev, res}
	}()
	waitFor(t, "the event stream to subscribe", func() bool { return e.app.Hub().Connections(u.ID) == 1 })
	tab := e.dial(t, u)
	titled := func(f frame) bool { return f.Type == "conversation" && f.Conversation.Title != "" }
	var seen []frame
	isAck := func(f frame) bool { return f.Type == "ack" }
	tab.write(sendFrame("1", convID, "first [[fake tokens=30]]"))
	seen = append(seen, tab.until(isAck)...)
	a1 := live(seen)
	seen = append(seen, tab.until(isDone(a1[len(a1)-1].MessageID))...)
	tab.write(sendFrame("2", convID, "second [[fake tokens=30]]"))
	toAck := tab.until(isAck)
	seen = append(seen, toAck...)
	a2 := live(toAck)
	seen = append(seen, tab.until(isDone(a2[len(a2)-1].MessageID))...)
	// The hub hands the title's frame to the tab and the event stream in
	// one pass; logout then ends the stream after what it has queued.
	if !slices.ContainsFunc(seen, titled) {
		tab.until(titled)
	}

	e.rest(t, u.Token, http.MethodPost, "/api/auth/logout", nil, http.StatusNoContent, nil)
	var r result
	select {
	case r = <-got:
	case <-time.After(testTimeout):
		t.Fatal("the event stream did not end at logout")
	}
	fs := frames(r.events)
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 30})
	for _, id := range []string{a1[len(a1)-1].MessageID, a2[len(a2)-1].MessageID} {
		if text, done := answer(t, fs, id); text != want || done.Status != "complete" {
			t.Fatalf("answer %s over /api/events: %q (%s)", id, text, done.Status)
		}
	}
	if !slices.ContainsFunc(fs, titled) {
		t.Fatal("the event stream missed the title")
	}
}

// closingModel is a model that records being closed.
type closingModel struct {
	hub.Model
	closed atomic.Bool
}

func (m *closingModel) Close() { m.closed.Store(true) }

// TestShutdownClosesModel: Shutdown closes a model that can be closed (the
// binary's llm.Router, whose background model-list fetches would otherwise
// run on until their own timeout), after the hub has stopped.
func TestShutdownClosesModel(t *testing.T) {
	t.Parallel()
	var m *closingModel
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		m = &closingModel{Model: c.Model}
		c.Model = m
	}})
	if m.closed.Load() {
		t.Fatal("the model was closed before Shutdown")
	}
	e.close()
	if !m.closed.Load() {
		t.Fatal("Shutdown left the model open")
	}
}
