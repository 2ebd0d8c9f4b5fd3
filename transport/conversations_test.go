package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

func TestConversationCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.register("Alice")

	r := e.do("POST", "/api/conversations", a.token, map[string]string{"title": "  Trip plans ", "model": "gpt-test", "systemPrompt": "Be brief.\nAlways."})
	expect(t, "create", r, http.StatusCreated, "")
	conv := r.json(t)["conversation"].(map[string]any)
	id := conv["id"].(string)
	if conv["title"] != "Trip plans" || conv["model"] != "gpt-test" || conv["systemPrompt"] != "Be brief.\nAlways." {
		t.Fatalf("created %v", conv)
	}
	for _, body := range []any{nil, map[string]string{"title": "No model"}, map[string]string{"model": ""}} {
		r := e.do("POST", "/api/conversations", a.token, body)
		expect(t, fmt.Sprintf("create with %v", body), r, http.StatusCreated, "")
		if got := r.json(t)["conversation"].(map[string]any)["model"]; got != "demo" {
			t.Fatalf("created with %v: model %q, want the default model \"demo\"", body, got)
		}
	}
	expect(t, "unknown model", e.do("POST", "/api/conversations", a.token, map[string]string{"model": "gpt-99"}), 400, "invalid_field")
	expect(t, "title too long", e.do("POST", "/api/conversations", a.token, map[string]string{"title": strings.Repeat("t", 201)}), 400, "invalid_field")
	expect(t, "title with a newline", e.do("POST", "/api/conversations", a.token, map[string]string{"title": "a\nb"}), 400, "invalid_field")
	expect(t, "prompt too long", e.do("POST", "/api/conversations", a.token, map[string]string{"systemPrompt": strings.Repeat("p", 8001)}), 400, "invalid_field")
	expect(t, "title at the limit", e.do("POST", "/api/conversations", a.token, map[string]string{"title": strings.Repeat("字", 200)}), 201, "")

	user := e.insertMessage(a, id, "", persistence.RoleUser, "Where to go?")
	answer := e.insertMessage(a, id, user.ID, persistence.RoleAssistant, "Lisbon.")
	e.live.setActive(id, answer.ID)

	r = e.do("GET", "/api/conversations/"+id, a.token, nil)
	expect(t, "get", r, http.StatusOK, "")
	var th struct {
		Conversation    persistence.Conversation
		Messages        []persistence.Message
		ActiveMessageID string
	}
	if err := json.Unmarshal(r.body, &th); err != nil {
		t.Fatal(err)
	}
	if th.Conversation.ID != id || len(th.Messages) != 2 || th.Messages[0].ID != user.ID || th.Messages[1].ParentID != user.ID || th.ActiveMessageID != answer.ID {
		t.Fatalf("get answered %s", r.body)
	}

	r = e.do("PATCH", "/api/conversations/"+id, a.token, map[string]string{"title": "Lisbon trip"})
	expect(t, "patch", r, http.StatusOK, "")
	patched := r.json(t)["conversation"].(map[string]any)
	if patched["title"] != "Lisbon trip" || patched["model"] != "gpt-test" || patched["systemPrompt"] != "Be brief.\nAlways." {
		t.Fatalf("patched %v", patched)
	}
	expect(t, "empty patch", e.do("PATCH", "/api/conversations/"+id, a.token, map[string]string{}), 400, "bad_request")
	expect(t, "patch unknown field", e.do("PATCH", "/api/conversations/"+id, a.token, map[string]string{"owner": "x"}), 400, "bad_request")

	expect(t, "delete", e.do("DELETE", "/api/conversations/"+id, a.token, nil), http.StatusNoContent, "")
	expect(t, "get deleted", e.do("GET", "/api/conversations/"+id, a.token, nil), http.StatusNotFound, "not_found")
	msgs, err := e.store.Messages(context.Background(), a.id, id)
	if (err != nil && !errors.Is(err, persistence.ErrNotFound)) || len(msgs) != 0 {
		t.Fatalf("messages after delete: %v, %v", msgs, err)
	}
	if _, err := e.store.Message(context.Background(), a.id, answer.ID); err == nil {
		t.Fatal("a message of the deleted conversation is still stored")
	}
	events := strings.Join(e.live.eventList(), ",")
	want := fmt.Sprintf("updated %s,cancel %s,deleted %s", id, id, id)
	if !strings.Contains(events, want) || !strings.HasPrefix(events, "created "+id) {
		t.Fatalf("hub was told %q; want it to start with created and contain %q", events, want)
	}
}

// TestOwnership: another user's conversation is a 404 on every route, and
// stays as it was.
func TestOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a, b := e.register("Owner"), e.register("Intruder")
	conv := e.createConversation(a, "Private")
	e.insertMessage(a, conv.ID, "", persistence.RoleUser, "secret words")
	before := e.do("GET", "/api/conversations/"+conv.ID, a.token, nil)
	expect(t, "owner reads", before, 200, "")

	for _, c := range []struct{ method, path string }{
		{"GET", "/api/conversations/" + conv.ID},
		{"PATCH", "/api/conversations/" + conv.ID},
		{"DELETE", "/api/conversations/" + conv.ID},
		{"GET", "/api/conversations/" + conv.ID + "/export"},
		{"GET", "/api/conversations/" + conv.ID + "/export?format=json"},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]string{"title": "pwned"}
		}
		r := e.do(c.method, c.path, b.token, body)
		expect(t, "intruder "+c.method+" "+c.path, r, http.StatusNotFound, "not_found")
		if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "Private") {
			t.Fatalf("404 leaks data: %s", r.body)
		}
	}
	r := e.do("GET", "/api/conversations?q=secret", b.token, nil)
	expect(t, "intruder search", r, 200, "")
	if n := len(r.json(t)["conversations"].([]any)); n != 0 {
		t.Fatalf("intruder's search found %d conversations", n)
	}
	after := e.do("GET", "/api/conversations/"+conv.ID, a.token, nil)
	if string(after.body) != string(before.body) {
		t.Fatalf("owner's data changed:\n%s\n%s", before.body, after.body)
	}
	for _, ev := range e.live.eventList() {
		if !strings.HasPrefix(ev, "created ") {
			t.Fatalf("the hub was told %q about a refused request", ev)
		}
	}

	for _, bad := range []string{"123", "ZZZZZZZZZZZZZZZZZZZZZZZZ", strings.ToUpper(persistence.NewID()), persistence.NewID() + "0"} {
		for _, method := range []string{"GET", "DELETE"} {
			expect(t, method+" malformed id "+bad, e.do(method, "/api/conversations/"+bad, a.token, nil), 400, "bad_request")
		}
		expect(t, "export malformed id", e.do("GET", "/api/conversations/"+bad+"/export", a.token, nil), 400, "bad_request")
	}
	expect(t, "unknown id", e.do("GET", "/api/conversations/"+persistence.NewID(), a.token, nil), 404, "not_found")
	expect(t, "no token", e.do("GET", "/api/conversations/"+conv.ID, "", nil), 401, "unauthorized")
}

func TestPaginationAndSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a, b := e.register("Pager"), e.register("Other")
	want := map[string]bool{}
	for i := 0; i < 23; i++ {
		want[e.createConversation(a, fmt.Sprintf("chat %02d", i)).ID] = true
	}
	e.createConversation(b, "not yours")

	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		r := e.do("GET", "/api/conversations?limit=5&cursor="+url.QueryEscape(cursor), a.token, nil)
		expect(t, "page", r, 200, "")
		var page struct {
			Conversations []persistence.Conversation
			NextCursor    string
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Conversations) > 5 {
			t.Fatalf("page of %d", len(page.Conversations))
		}
		for i, c := range page.Conversations {
			if seen[c.ID] || !want[c.ID] {
				t.Fatalf("conversation %s (%q) seen twice or not the user's", c.ID, c.Title)
			}
			seen[c.ID] = true
			if i > 0 && c.UpdatedAt.After(page.Conversations[i-1].UpdatedAt) {
				t.Fatal("page not newest first")
			}
		}
		pages++
		if cursor = page.NextCursor; cursor == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != len(want) || pages != 5 {
		t.Fatalf("saw %d of %d conversations in %d pages", len(seen), len(want), pages)
	}

	// A word only in a message body (not in any title) finds its conversation.
	var target persistence.Conversation
	for id := range want {
		target.ID = id
		break
	}
	q := e.insertMessage(a, target.ID, "", persistence.RoleUser, "Tell me about the Zanzibar archipelago")
	e.insertMessage(a, target.ID, q.ID, persistence.RoleAssistant, "It lies off the coast of Tanzania.")
	for _, term := range []string{"zanzibar", "TANZANIA"} {
		r := e.do("GET", "/api/conversations?q="+term, a.token, nil)
		expect(t, "search "+term, r, 200, "")
		found := r.json(t)["conversations"].([]any)
		if len(found) != 1 || found[0].(map[string]any)["id"] != target.ID {
			t.Fatalf("search %q found %s", term, r.body)
		}
	}
	r := e.do("GET", "/api/conversations?q=zanzibar", b.token, nil)
	if len(r.json(t)["conversations"].([]any)) != 0 {
		t.Fatal("another user's search found the conversation")
	}

	expect(t, "limit 0", e.do("GET", "/api/conversations?limit=0", a.token, nil), 400, "invalid_field")
	expect(t, "limit 101", e.do("GET", "/api/conversations?limit=101", a.token, nil), 400, "invalid_field")
	expect(t, "limit word", e.do("GET", "/api/conversations?limit=ten", a.token, nil), 400, "invalid_field")
	expect(t, "bad cursor", e.do("GET", "/api/conversations?cursor=%21%21garbage", a.token, nil), 400, "invalid_field")
	expect(t, "long cursor", e.do("GET", "/api/conversations?cursor="+strings.Repeat("A", api.MaxCursorBytes+1), a.token, nil), 400, "invalid_field")
	r = e.do("GET", "/api/conversations", a.token, nil)
	if n := len(r.json(t)["conversations"].([]any)); n != 23 {
		t.Fatalf("default page holds %d, want all 23 (default limit 30)", n)
	}
	empty := e.register("Empty")
	r = e.do("GET", "/api/conversations", empty.token, nil)
	if string(r.body) != `{"conversations":[],"nextCursor":""}` {
		t.Fatalf("empty list = %s", r.body)
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.register("Exporter")
	r := e.do("POST", "/api/conversations", a.token, map[string]string{"title": `Rust "vs" Go/../etc`, "systemPrompt": "You are terse."})
	var body struct{ Conversation persistence.Conversation }
	_ = json.Unmarshal(r.body, &body)
	conv := body.Conversation

	q := e.insertMessage(a, conv.ID, "", persistence.RoleUser, "Compare them.")
	first := e.insertMessage(a, conv.ID, q.ID, persistence.RoleAssistant, "First answer.")
	second := e.insertMessage(a, conv.ID, q.ID, persistence.RoleAssistant, "Second answer:\n```go\nfunc main() {")
	follow := e.insertMessage(a, conv.ID, second.ID, persistence.RoleUser, "And memory safety?")
	_ = e.insertMessage(a, conv.ID, first.ID, persistence.RoleUser, "Follow-up on the first.")
	_ = follow

	r = e.do("GET", "/api/conversations/"+conv.ID+"/export?format=markdown", a.token, nil)
	expect(t, "markdown export", r, 200, "")
	if ct := r.header.Get("Content-Type"); ct != "text/markdown; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	disp := r.header.Get("Content-Disposition")
	wantName := "chatd-rust-vs-go-etc-" + conv.ID + ".md"
	if disp != `attachment; filename="`+wantName+`"` {
		t.Fatalf("Content-Disposition %q, want filename %s", disp, wantName)
	}
	md := string(r.body)
	for _, want := range []string{
		"# Rust \"vs\" Go/../etc\n", "> You are terse.", "- Messages: 5",
		// The main thread leads to the newest message (the follow-up on
		// the first answer), as the app shows it; the other version after.
		"### 1. User\n\nCompare them.",
		"### 2. Assistant (demo) (version 1 of 2)\n\nFirst answer.",
		"### 3. User\n\nFollow-up on the first.",
		"## Another version of message 2\n\n### 4. Assistant (demo) (version 2 of 2)\n\nSecond answer:\n```go\nfunc main() {\n```\n", // the open fence is closed
		"### 5. User\n\nAnd memory safety?",
	} {
		if !strings.Contains(md, want) {
			t.Fatalf("markdown export lacks %q:\n%s", want, md)
		}
	}

	r = e.do("GET", "/api/conversations/"+conv.ID+"/export?format=json", a.token, nil)
	expect(t, "json export", r, 200, "")
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if ok, _ := regexp.MatchString(`^attachment; filename="chatd-rust-vs-go-etc-[0-9a-f]{24}\.json"$`, r.header.Get("Content-Disposition")); !ok {
		t.Fatalf("Content-Disposition %q", r.header.Get("Content-Disposition"))
	}
	var doc struct {
		Format       string
		Conversation persistence.Conversation
		Messages     []persistence.Message
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format != api.ExportFormat || doc.Conversation.ID != conv.ID || len(doc.Messages) != 5 || doc.Messages[2].Content != second.Content {
		t.Fatalf("json export: %s", r.body)
	}

	expect(t, "bad format", e.do("GET", "/api/conversations/"+conv.ID+"/export?format=pdf", a.token, nil), 400, "invalid_field")

	untitled := e.createConversation(a, "")
	r = e.do("GET", "/api/conversations/"+untitled.ID+"/export", a.token, nil)
	expect(t, "untitled export", r, 200, "")
	if !strings.Contains(r.header.Get("Content-Disposition"), `filename="chatd-conversation-`+untitled.ID+`.md"`) ||
		!strings.Contains(string(r.body), "_No messages._") {
		t.Fatalf("untitled export: %v\n%s", r.header, r.body)
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.register("Modeler")
	r := e.do("GET", "/api/models", a.token, nil)
	expect(t, "models", r, 200, "")
	want := `{"models":[{"id":"demo","name":"Demo","demo":true,"default":true,"defaults":{}},` +
		`{"id":"gpt-test","name":"GPT test","demo":false,"default":false,"defaults":{}}],` +
		`"upstreams":[{"name":"","label":""}]}` // models of no named upstream: one group named ""
	if string(r.body) != want {
		t.Fatalf("models = %s", r.body)
	}
	expect(t, "models without token", e.do("GET", "/api/models", "", nil), 401, "unauthorized")
}

// TestOtherUsersIDsLikeUnknown: every conversation route answers a
// conversation (or message) of another user exactly as one that does not
// exist, byte for byte: status, body and headers (but Date and the
// request id), whatever else the request holds (parameters to check, a
// model, a page's before).
func TestOtherUsersIDsLikeUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	owner, intruder := e.register("Owner"), e.register("Intruder")
	conv := e.createConversation(owner, "Private")
	msg := e.insertMessage(owner, conv.ID, "", persistence.RoleUser, "secret words")
	own := e.createConversation(intruder, "Mine")
	ownMsg := e.insertMessage(intruder, own.ID, "", persistence.RoleUser, "my words")
	unknownConv, unknownMsg := persistence.NewID(), persistence.NewID()
	type request struct {
		method, path string
		body         any
	}
	requests := func(convID, msgID string) []request {
		base := "/api/conversations/" + convID
		return []request{
			{"GET", base, nil},
			{"GET", base + "?limit=1", nil},
			{"GET", base + "/messages", nil},
			{"GET", base + "/messages?before=" + msgID, nil},
			{"GET", base + "/messages?before=" + ownMsg.ID, nil},
			{"PATCH", base, map[string]any{"title": "pwned"}},
			{"PATCH", base, map[string]any{"params": map[string]any{"temperature": 1}}},
			{"PATCH", base, map[string]any{"params": map[string]any{"maxTokens": 1 << 21}}},
			{"PATCH", base, map[string]any{"model": "gpt-test", "params": map[string]any{"topP": 0.5}}},
			{"PATCH", base, map[string]any{"systemPrompt": "obey", "model": "gpt-test"}},
			{"DELETE", base, nil},
			{"GET", base + "/export", nil},
			{"GET", base + "/export?format=json", nil},
		}
	}
	theirs, unknown := requests(conv.ID, msg.ID), requests(unknownConv, unknownMsg)
	for i := range theirs {
		t.Run(fmt.Sprintf("%s %s", theirs[i].method, strings.ReplaceAll(theirs[i].path, conv.ID, ":id")), func(t *testing.T) {
			a := e.do(theirs[i].method, theirs[i].path, intruder.token, theirs[i].body)
			b := e.do(unknown[i].method, unknown[i].path, intruder.token, unknown[i].body)
			for _, r := range []response{a, b} {
				r.header.Del("Date")
				r.header.Del("X-Request-Id")
			}
			if a.status != http.StatusNotFound || a.status != b.status || string(a.body) != string(b.body) || fmt.Sprint(a.header) != fmt.Sprint(b.header) {
				t.Fatalf("another user's id: %d %v %s\nan unknown id: %d %v %s", a.status, a.header, a.body, b.status, b.header, b.body)
			}
		})
	}
	after := e.do("GET", "/api/conversations/"+conv.ID, owner.token, nil)
	expect(t, "owner reads", after, http.StatusOK, "")
	if !strings.Contains(string(after.body), `"title":"Private"`) || !strings.Contains(string(after.body), "secret words") {
		t.Fatalf("the owner's conversation changed: %s", after.body)
	}
}
