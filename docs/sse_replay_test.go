package docs

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatd/llm/fakeai"
	"chatd/llm/models"
)

const reasoningSession = "A session with a reasoning model"

// sseEvent is one event of an event stream.
type sseEvent struct {
	name, id string
	data     map[string]any
}

// parseEvents reads the events of an event stream, comments left out.
func parseEvents(t *testing.T, where string, lines []string) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		switch name {
		case "event":
			cur.name = value
		case "id":
			cur.id = value
		case "data":
			f, err := decodeFrame([]byte(value))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			cur.data = f
		case "":
			if cur.name != "" || cur.data != nil {
				out = append(out, cur)
			}
			cur = sseEvent{}
		}
	}
	if cur.name != "" || cur.data != nil {
		out = append(out, cur)
	}
	return out
}

var (
	fakeFlagsRe = regexp.MustCompile(`-tokens (\d+) -reasoning (\d+) -reasoning-key (\w+)`)
	secondAskRe = regexp.MustCompile(`asks the fake for (\d+) reasoning chunks, then (\d+) tokens`)
)

// TestSSEResumeReplays replays the SSE resume of protocol.md's reasoning
// session against a real server whose upstream is the fake the session
// names (its flags and the second question's marker as the text says):
// the second answer is asked for and ends, then GET .../stream with the
// documented Last-Event-ID must answer the documented events: same names,
// ids, fields and values (the ids standing for the server's, the usage
// aside, which counts a prompt the page does not show).
func TestSSEResumeReplays(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	prose := continuation.ReplaceAllString(strings.Join(docSection(t, reasoningSession), "\n"), " ")
	flags, second := fakeFlagsRe.FindStringSubmatch(prose), secondAskRe.FindStringSubmatch(prose)
	if flags == nil || second == nil {
		t.Fatalf("protocol.md %q: the fake's flags or the second question's marker are not said as before", reasoningSession)
	}
	var sse codeBlock
	for _, b := range readBlocks(t, "protocol.md") {
		if b.section == reasoningSession && len(b.lines) > 0 && b.lines[0] == ": open" {
			sse = b
		}
	}
	lines := strings.Split(string(data), "\n")
	m := lastEventIDRe.FindStringSubmatch(strings.Join(lines[max(0, sse.line-4):max(0, sse.line-1)], " "))
	if sse.lines == nil || m == nil {
		t.Fatalf("protocol.md %q: no SSE transcript after the Last-Event-ID it resumes from", reasoningSession)
	}
	want := parseEvents(t, fmt.Sprintf("protocol.md:%d", sse.line), sse.lines)

	tokens, _ := strconv.Atoi(flags[1])
	reasoning, _ := strconv.Atoi(flags[2])
	fake := fakeai.Start(t, fakeai.Options{Defaults: fakeai.Config{Tokens: tokens, Reasoning: reasoning,
		ReasoningKey: fakeai.ReasoningKey(flags[3]), Delay: time.Millisecond}})
	srv := startServerWith(t, models.Config{BaseURL: fake.URL, APIKey: "fake", Models: "fake-reasoner",
		ReasoningModels: []string{"fake-reasoner"}})
	token := do(t, http.MethodPost, srv.URL+"/api/auth/register", "",
		`{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}`).field(t, "token")
	conv := do(t, http.MethodPost, srv.URL+"/api/conversations", token, `{"model":"fake-reasoner"}`).field(t, "conversation.id")
	base := srv.URL + "/api/conversations/" + conv
	events := http.Header{"Authorization": {"Bearer " + token}, "Accept": {"text/event-stream"}}
	var answer string
	for _, content := range []string{"Why is the sky blue?",
		fmt.Sprintf("And at sunset? [[fake reasoning=%s tokens=%s]]", second[1], second[2])} {
		r := do(t, http.MethodPost, base+"/messages", token, fmt.Sprintf(`{"content":%q}`, content))
		if r.status != http.StatusAccepted {
			t.Fatalf("send %q: %d %s", content, r.status, r.body)
		}
		answer = r.field(t, "messageId")
		if end := doWith(t, http.MethodGet, base+"/stream?messageId="+answer, "", events); !strings.Contains(string(end.body), "event: done") {
			t.Fatalf("the answer to %q ended without its done: %d %s", content, end.status, end.body)
		}
	}

	header := events.Clone()
	header.Set("Last-Event-ID", answer+":"+m[2]+"/"+m[3])
	r := doWith(t, http.MethodGet, base+"/stream", "", header)
	if r.status != http.StatusOK {
		t.Fatalf("the resume answered %d %s", r.status, r.body)
	}
	got := parseEvents(t, "the server's stream", strings.Split(string(r.body), "\n"))
	ids := map[string]string{m[1]: answer}
	if len(got) != len(want) {
		t.Fatalf("protocol.md:%d: documented %d events, the server sent %d:\n%s", sse.line, len(want), len(got), r.body)
	}
	for i, w := range want {
		g := got[i]
		where := fmt.Sprintf("protocol.md:%d: event %d (%s)", sse.line, i+1, w.name)
		if docID, _ := w.data["conversationId"].(string); docID != "" {
			ids[docID] = conv
		}
		if g.name != w.name || g.id != replaceIDs(w.id, ids) {
			t.Errorf("%s: documented event %s id %q, the server sent %s id %q", where, w.name, w.id, g.name, g.id)
		}
		if dk, gk := keys(w.data), keys(g.data); dk != gk {
			t.Errorf("%s: documented fields %s, the server sent %s", where, dk, gk)
			continue
		}
		for k, dv := range w.data {
			if k == "usage" {
				continue
			}
			if d, s := replaceIDs(fmt.Sprint(dv), ids), fmt.Sprint(g.data[k]); d != s {
				t.Errorf("%s: %s: documented %q, the server sent %q", where, k, d, s)
			}
		}
	}
}

// replaceIDs replaces the documented ids in s with the real ones.
func replaceIDs(s string, ids map[string]string) string {
	for doc, real := range ids {
		s = strings.ReplaceAll(s, doc, real)
	}
	return s
}
