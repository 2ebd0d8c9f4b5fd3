package docs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/models"
)

// doWith sends a request with the given headers (none implied) and body.
func doWith(t *testing.T, method, url, body string, header http.Header) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: data}
}

// documented fails unless one of docs holds every phrase.
func documented(t *testing.T, phrases ...string) {
	t.Helper()
	var all strings.Builder
	for _, doc := range []string{"protocol.md", "api.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(data)
	}
	text := continuation.ReplaceAllString(all.String(), " ")
	for _, p := range phrases {
		if !strings.Contains(text, p) {
			t.Errorf("neither protocol.md nor api.md says %s", p)
		}
	}
}

// TestRefusalsAsDocumented: the SSE routes' bodies and statuses, and the
// frames' field rules, are as protocol.md and api.md say: a body sent as
// anything but JSON and one with an unknown field are 400 bad_request
// (one without Content-Type is read as JSON), content of white space
// alone is refused, a send while an answer runs is 409
// generation_running, a resume's bad cursor 400 bad_seq, one naming a
// user's message 400 invalid_field; over the WebSocket an unknown field
// is ignored and a numeric id over 20 characters refused, not echoed.
func TestRefusalsAsDocumented(t *testing.T) {
	t.Parallel()
	// The demo model a word per 25 ms: its answer of some 130 words runs
	// 3 s, so the second send finds it running on a loaded machine under
	// -race; at startServer's 5 ms it ran 0.7 s, which a stall could
	// outlast (the send then taken, 202).
	srv := startServerWith(t, models.Config{DemoDelay: 25 * time.Millisecond})
	r := do(t, http.MethodPost, srv.URL+"/api/auth/register", "",
		`{"email":"grace@example.com","password":"correct horse battery","name":"Grace"}`)
	token := r.field(t, "token")
	conv := do(t, http.MethodPost, srv.URL+"/api/conversations", token, `{}`).field(t, "conversation.id")
	auth := func(kv ...string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + token}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	base := srv.URL + "/api/conversations/" + conv
	type refusal struct {
		name, method, url, body string
		header                  http.Header
		status                  int
		code, message           string
	}
	refused := func(c refusal) {
		t.Helper()
		got := doWith(t, c.method, c.url, c.body, c.header)
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(got.body, &e)
		if got.status != c.status || e.Error.Code != c.code || e.Error.Message != c.message {
			t.Errorf("%s: answered %d %s; want %d %s %q", c.name, got.status, got.body, c.status, c.code, c.message)
		}
	}
	const notJSON = "the body must be JSON (Content-Type: application/json)"
	for _, c := range []refusal{
		{"a send as text/plain", "POST", base + "/messages", `{"content":"hi"}`, auth("Content-Type", "text/plain"), 400, "bad_request", notJSON},
		{"a send as a form", "POST", base + "/messages", `{"content":"hi"}`, auth("Content-Type", "application/x-www-form-urlencoded"), 400, "bad_request", notJSON},
		{"a send with a frame's id", "POST", base + "/messages", `{"content":"hi","id":"1"}`, auth("Content-Type", "application/json"), 400, "bad_request", `unknown field "id"`},
		{"a send of white space", "POST", base + "/messages", `{"content":" \n\t "}`, auth("Content-Type", "application/json"), 400, "invalid_field", "content is required"},
		{"a regenerate with a frame's type", "POST", base + "/regenerate", `{"type":"regenerate"}`, auth("Content-Type", "application/json"), 400, "bad_request", `unknown field "type"`},
		{"a cancel as text/plain", "POST", base + "/cancel", `{}`, auth("Content-Type", "text/plain"), 400, "bad_request", notJSON},
		{"a creation with an unknown field", "POST", srv.URL + "/api/conversations", `{"name":"x"}`, auth("Content-Type", "application/json"), 400, "bad_request", `unknown field "name"`},
	} {
		refused(c)
	}
	documented(t, notJSON, `unknown field "id"`, "not white space alone: `invalid_field`, `content is required`")

	// Without a Content-Type the body is read as JSON; a second send while
	// its answer runs (the demo model takes 3 s) is 409.
	sent := doWith(t, "POST", base+"/messages", `{"content":"Say hello"}`, auth())
	if sent.status != http.StatusAccepted {
		t.Fatalf("a send without Content-Type answered %d %s", sent.status, sent.body)
	}
	answer, user := sent.field(t, "messageId"), sent.field(t, "userMessageId")
	refused(refusal{"a send while the answer runs", "POST", base + "/messages", `{"content":"again"}`,
		auth("Content-Type", "application/json"), 409, "generation_running", "an answer is already running in this conversation; cancel it or regenerate"})
	documented(t, "| `generation_running` | 409", "409 `generation_running`")
	if end := doWith(t, "GET", base+"/stream?messageId="+answer, "", auth("Accept", "text/event-stream")); !strings.Contains(string(end.body), "event: done") {
		t.Fatalf("the answer's stream ended without its done: %d %s", end.status, end.body)
	}
	refused(refusal{"a resume past the answer", "GET", base + "/stream?messageId=" + answer + "&lastSeq=100000", "",
		auth("Accept", "text/event-stream"), 400, "bad_seq", "lastSeq 100000 is outside the answer (831 bytes)"})
	refused(refusal{"a resume naming the user's message", "GET", base + "/stream?messageId=" + user, "",
		auth("Accept", "text/event-stream"), 400, "invalid_field", "messageId must name an answer"})
	documented(t, "| `invalid_field`, `bad_seq`, `unknown_model`", "`invalid_field`, `messageId must name an answer`")

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	exchange := func(frame, want string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatalf("write %s: %v", frame, err)
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("after %s: %v", frame, err)
			}
			if f, _ := decodeFrame(data); f["type"] == "hello" || f["type"] == "conversation" {
				continue
			}
			if !strings.HasPrefix(string(data), want) {
				t.Errorf("%s answered %s; want one starting %s", frame, data, want)
			}
			return
		}
	}
	exchange(`{"type":"subscribe","id":"s","conversationId":"`+conv+`","messageId":"`+user+`"}`,
		`{"type":"error","id":"s","code":"invalid_field","message":"messageId must name an answer"}`)
	exchange(`{"type":"send","id":"w","conversationId":"`+conv+`","content":"  \n"}`,
		`{"type":"error","id":"w","code":"invalid_field","message":"content is required"}`)
	exchange(`{"type":"ping","id":123456789012345678901}`,
		`{"type":"error","code":"invalid_field","message":"id number too long"}`)
	exchange(`{"type":"ping","id":12345678901234567890,"lastSeq":"x"}`,
		`{"type":"error","id":12345678901234567890,"code":"invalid_field","message":"field \"lastSeq\" has the wrong type"}`)
	exchange(`{"type":"ping","id":"p","unknown":true}`, `{"type":"pong","id":"p","time":`)
	documented(t, "number written in at most 20 characters", "Fields a frame's type does not take are ignored")
}
