package sse_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/limits"
	"chatd/transport/sse"
)

// errorBody reads res's JSON error and returns its code and message.
func errorBody(t *testing.T, res *http.Response) (code, message string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	data, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("status %d, body %q is no JSON error: %v", res.StatusCode, data, err)
	}
	return b.Error.Code, b.Error.Message
}

// TestInvalidUTF8BodyRefused: a send or regenerate whose body is not valid
// UTF-8 is refused with 400 naming the field, as a WebSocket text frame
// that is not UTF-8 is refused, instead of reaching the hub with U+FFFD in
// place of the bad bytes.
func TestInvalidUTF8BodyRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	for _, tc := range []struct{ name, path, body, accept, msg string }{
		{"send, 202", "messages", "{\"content\":\"caf\xe9\"}", "", "content: must be valid UTF-8"},
		{"send, streamed", "messages", "{\"content\":\"caf\xe9\"}", "text/event-stream", "content: must be valid UTF-8"},
		{"send, bad client message id", "messages", "{\"content\":\"hi\",\"clientMessageId\":\"k\xff\"}", "", "clientMessageId: must be valid UTF-8"},
		{"regenerate, bad model", "regenerate", "{\"model\":\"m\xc3\"}", "text/event-stream", "model: must be valid UTF-8"},
	} {
		hdr := []string{}
		if tc.accept != "" {
			hdr = append(hdr, "Accept", tc.accept)
		}
		res := s.request("u", "POST", "/api/conversations/"+conv+"/"+tc.path, tc.body, hdr...)
		if res.StatusCode != http.StatusBadRequest {
			res.Body.Close() // a stream: not read
			t.Errorf("%s: status %d, want 400", tc.name, res.StatusCode)
			continue
		}
		if code, msg := errorBody(t, res); code != "invalid_field" || msg != tc.msg {
			t.Errorf("%s: %s %q, want invalid_field %q", tc.name, code, msg, tc.msg)
		}
	}
	if n := len(s.hub.Sends()); n != 0 {
		t.Fatalf("the hub got %d sends", n)
	}
}

// TestTokenInQueryRefused: the SSE routes refuse a token in the query
// string with 400, whatever the case of its name, as the WebSocket upgrade
// does, and start nothing.
func TestTokenInQueryRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/events?token=token-u", ""},
		{"GET", "/api/events?Token=token-u", ""},
		{"GET", "/api/events?conversationId=" + conv + "&ACCESS_TOKEN=token-u", ""},
		{"GET", "/api/conversations/" + conv + "/stream?Jwt=token-u", ""},
		{"POST", "/api/conversations/" + conv + "/messages?TOKEN=token-u", `{"content":"hi"}`},
		{"POST", "/api/conversations/" + conv + "/regenerate?Bearer=token-u", ""},
		{"POST", "/api/conversations/" + conv + "/cancel?Auth=token-u", ""},
	} {
		res := s.request("u", tc.method, tc.path, tc.body, "Accept", "text/event-stream")
		if res.StatusCode != http.StatusBadRequest {
			res.Body.Close() // a stream: not read
			t.Errorf("%s %s: status %d, want 400", tc.method, tc.path, res.StatusCode)
			continue
		}
		if code, _ := errorBody(t, res); code != "bad_request" {
			t.Errorf("%s %s: code %s", tc.method, tc.path, code)
		}
	}
	if n := len(s.hub.Sends()) + len(s.hub.SubscribeRequests()); n != 0 {
		t.Fatalf("the hub got %d sends and subscribes", n)
	}
}

// TestEventsCursorCheckedBeforeOpening: GET /api/events with a malformed
// resume cursor (lastSeq, lastReasoningSeq, messageId, or a Last-Event-ID
// that is the only cursor) is answered 400 naming it before its stream
// opens: with the user's connection slots all taken, it is still a 400
// (not a 429), and its session is not checked. Before, the stream was
// opened (a slot taken, the session checked) and then refused; without
// conversationId a malformed cursor was not looked at and the stream
// opened.
func TestEventsCursorCheckedBeforeOpening(t *testing.T) {
	t.Parallel()
	var rechecks atomic.Int32
	s := newServer(t, sse.Options{Limits: limits.New(limits.Options{MaxConns: 1}),
		Recheck: func(context.Context, auth.Identity) error { rechecks.Add(1); return nil }}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	held := s.request("u", "GET", "/api/events", "")
	if held.StatusCode != http.StatusOK || rechecks.Load() != 1 {
		t.Fatalf("first stream: %d, %d session checks", held.StatusCode, rechecks.Load())
	}
	c := "?conversationId=" + conv
	for _, tc := range []struct{ name, query, lastEventID, msg string }{
		{"lastSeq", c + "&lastSeq=x", "", "lastSeq: "},
		{"negative lastSeq", c + "&lastSeq=-1", "", "lastSeq: "},
		{"lastReasoningSeq", c + "&lastSeq=1&lastReasoningSeq=1e3", "", "lastReasoningSeq: "},
		{"messageId", c + "&messageId=nope", "", "messageId: "},
		{"a lone Last-Event-ID", c, "nope", "Last-Event-ID: "},
		{"lastSeq without conversationId", "?lastSeq=1.5", "", "lastSeq: "},
		{"messageId without conversationId", "?messageId=nope", "", "messageId: "},
	} {
		var hdr []string
		if tc.lastEventID != "" {
			hdr = []string{"Last-Event-ID", tc.lastEventID}
		}
		res := s.request("u", "GET", "/api/events"+tc.query, "", hdr...)
		if res.StatusCode != http.StatusBadRequest {
			res.Body.Close() // a stream: not read
			t.Errorf("%s: status %d, want 400", tc.name, res.StatusCode)
			continue
		}
		if code, msg := errorBody(t, res); code != "invalid_field" || !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("%s: %s %q, want invalid_field %q...", tc.name, code, msg, tc.msg)
		}
	}
	if n := rechecks.Load(); n != 1 {
		t.Fatalf("%d session checks, want 1 (the malformed requests opened streams)", n)
	}
	// A well-formed one finds no slot left.
	if res := s.request("u", "GET", "/api/events"+c+"&lastSeq=3", ""); res.StatusCode != http.StatusTooManyRequests {
		res.Body.Close()
		t.Fatalf("a good cursor without a slot: %d, want 429", res.StatusCode)
	}
}

// TestClientMessageIDRefused: a send's or regenerate's clientMessageId
// must be visible ASCII, as over the WebSocket: one of a space alone, or
// holding a space, a control or a non-ASCII character, is refused with
// 400 invalid_field naming the field and the character, and nothing
// reaches the hub.
func TestClientMessageIDRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	for _, tc := range []struct{ key, char string }{
		{` `, "U+0020"},
		{`a b`, "U+0020"},
		{`\u0000`, "U+0000"},
		{`clé`, "U+00E9"},
	} {
		for _, req := range []struct{ path, body string }{
			{"messages", `{"content":"hi","clientMessageId":"` + tc.key + `"}`},
			{"regenerate", `{"clientMessageId":"` + tc.key + `"}`},
		} {
			res := s.request("u", "POST", "/api/conversations/"+conv+"/"+req.path, req.body)
			if res.StatusCode != http.StatusBadRequest {
				res.Body.Close()
				t.Fatalf("%s with key %q: status %d, want 400", req.path, tc.key, res.StatusCode)
			}
			if code, msg := errorBody(t, res); code != "invalid_field" || !strings.HasPrefix(msg, "clientMessageId") || !strings.Contains(msg, tc.char) {
				t.Fatalf("%s with key %q: %s %q, want invalid_field naming clientMessageId and %s", req.path, tc.key, code, msg, tc.char)
			}
		}
	}
	if n := len(s.hub.Sends()); n != 0 {
		t.Fatalf("the hub got %d sends", n)
	}
}

// TestLoneSurrogateRefused: a send or regenerate whose body holds the
// escape of half a UTF-16 surrogate pair alone ("\ud800"), which
// encoding/json decodes as U+FFFD, is refused with 400 invalid_field
// naming the field, as invalid UTF-8 is, and nothing reaches the hub.
func TestLoneSurrogateRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	const half = ` is half of a UTF-16 surrogate pair, without its other half`
	for _, tc := range []struct{ name, path, body, accept, msg string }{
		{"send, 202", "messages", `{"content":"caf\ud800"}`, "", `content: must be valid text: \ud800` + half},
		{"send, streamed", "messages", `{"content":"\udfff"}`, "text/event-stream", `content: must be valid text: \udfff` + half},
		{"regenerate", "regenerate", `{"model":"m\ud83d"}`, "", `model: must be valid text: \ud83d` + half},
	} {
		hdr := []string{}
		if tc.accept != "" {
			hdr = append(hdr, "Accept", tc.accept)
		}
		res := s.request("u", "POST", "/api/conversations/"+conv+"/"+tc.path, tc.body, hdr...)
		if res.StatusCode != http.StatusBadRequest {
			res.Body.Close()
			t.Fatalf("%s: status %d, want 400", tc.name, res.StatusCode)
		}
		if code, msg := errorBody(t, res); code != "invalid_field" || msg != tc.msg {
			t.Fatalf("%s: %s %q, want invalid_field %q", tc.name, code, msg, tc.msg)
		}
	}
	if n := len(s.hub.Sends()); n != 0 {
		t.Fatalf("the hub got %d sends", n)
	}
}
