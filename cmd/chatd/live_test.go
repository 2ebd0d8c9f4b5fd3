package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
	"chatd/persistence/ferret"
)

// liveFrame is the part of a server frame these tests read.
type liveFrame struct {
	Type, ID, ConversationID, MessageID, Text, Status, Code string
	Seq                                                     int
}

// TestFerretLiveChannel runs the binary's run() with MONGODB_URI pointing
// at an in-process FerretDB and the real fake upstream: a WebSocket answer
// streams and is stored, a cancel stops one, and a SIGTERM mid-answer
// (cancelling run's context) stores it as interrupted after every frame
// went out and the socket closed with 1001.
func TestFerretLiveChannel(t *testing.T) {
	t.Parallel()
	fake := fakeai.Start(t, fakeai.Options{})
	env := testEnv(t.TempDir(), "MONGODB_URI", ferret.Start(t), "OPENAI_API_KEY", "sk-test",
		"OPENAI_BASE_URL", fake.URL, "OPENAI_MODELS", "fake-mini")
	s := start(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", s.logs)
		}
	})
	token, convID := registerAndCreate(t, s.url)

	ws := dialLive(t, s.url, token)
	send := func(id, content string) string {
		writeLive(t, ws, map[string]any{"type": "send", "id": id, "conversationId": convID, "content": content})
		return readLive(t, ws, func(f liveFrame) bool { return f.Type == "ack" && f.ID == id }).MessageID
	}
	collect := func(messageID string) (string, liveFrame) {
		var text strings.Builder
		for {
			f := readLive(t, ws, func(f liveFrame) bool { return f.MessageID == messageID && (f.Type == "delta" || f.Type == "done") })
			if f.Type == "done" {
				return text.String(), f
			}
			text.WriteString(f.Text)
		}
	}

	first := send("1", "stream [[fake tokens=30 split=true]]")
	if text, done := collect(first); done.Status != "complete" || text != fakeai.ExpectedText(fakeai.Config{Tokens: 30}) {
		t.Fatalf("first answer %q (%s)", text, done.Status)
	}

	second := send("2", "cancel me [[fake tokens=500 delay=10ms]]")
	readLive(t, ws, func(f liveFrame) bool { return f.Type == "delta" })
	writeLive(t, ws, map[string]any{"type": "cancel", "id": "3", "conversationId": convID})
	if _, done := collect(second); done.Status != "cancelled" {
		t.Fatalf("cancelled answer ended %s", done.Status)
	}

	third := send("4", "interrupt me [[fake tokens=500 delay=10ms]]")
	head := readLive(t, ws, func(f liveFrame) bool { return f.Type == "delta" && f.MessageID == third })
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	rest, done := collect(third)
	text := head.Text + rest
	if done.Status != "interrupted" || done.Seq != len(text) {
		t.Fatalf("interrupted answer: %+v after %d bytes", done, len(text))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("socket ended with %v, want 1001", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}

	s2 := start(t, env)
	status, body := call(t, "GET", s2.url+"/api/conversations/"+convID, token, nil)
	mustStatus(t, "read after restart", status, http.StatusOK, body)
	byID := map[string]map[string]any{}
	for _, m := range body["messages"].([]any) {
		byID[m.(map[string]any)["id"].(string)] = m.(map[string]any)
	}
	if m := byID[third]; m["status"] != "interrupted" || m["content"] != text {
		t.Fatalf("stored %v, streamed %q", m, text)
	}
	if m := byID[second]; m["status"] != "cancelled" {
		t.Fatalf("cancelled answer stored as %v", m["status"])
	}
}

func dialLive(t *testing.T, url, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func writeLive(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readLive returns the next frame that matches, skipping others.
func readLive(t *testing.T, c *websocket.Conn, match func(liveFrame) bool) liveFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f liveFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if f.Type == "error" {
			t.Fatalf("error frame %s", data)
		}
		if match(f) {
			return f
		}
	}
}
