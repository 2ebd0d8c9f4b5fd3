package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence"
)

// TestUpstreamFaults: every upstream failure ends in exactly one done with
// status error and a clear message, the partial text stored, the server
// healthy afterwards; a 429 followed by success is retried.
func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		marker   string
		status   string
		code     string
		partial  bool // some text arrived before the failure
		requests int64
		// timer: the upstream client's own timeout ends the answer; it is
		// short (2 s) for these rows only, so that they do not wait long,
		// and the others keep the harness's, which no stall of a loaded
		// machine reaches (a 2 s one turned their fault into a timeout).
		timer bool
	}{
		{"429 then success", "fault=429 times=1", "complete", "", false, 2, false},
		{"500 every time", "fault=500", "error", "upstream_error", false, 3, false},
		{"hang before the first token", "fault=hang_first", "error", "timeout", false, 1, true},
		{"hang mid-stream", "fault=hang_mid after=5", "error", "timeout", true, 1, true},
		{"cut mid-stream", "fault=cut_mid after=5", "error", "connection", true, 1, false},
		{"malformed chunk", "fault=malformed after=5", "error", "malformed", true, 1, false},
		{"out of quota", "fault=quota", "error", "quota_exhausted", false, 1, false},
		{"408 every time", "fault=408", "error", "timeout", false, 3, false},
		{"empty chunks mid-stream", "fault=empty_mid after=5", "error", "timeout", true, 1, true},
		// A model asking to call a tool, with no text: stored complete
		// and empty before, a blank answer.
		{"a tool call and no text", "fault=tool_call", "error", "upstream_error", false, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o envOptions
			if tt.timer {
				o.model = func(m *openai.Options) { m.FirstTokenTimeout, m.IdleTimeout = 2*time.Second, 2*time.Second }
			}
			e := newEnv(t, o)
			u := e.register(t)
			a := e.dial(t, u)
			ack := a.start("fail [[fake tokens=20 " + tt.marker + "]]")
			frames := live(a.until(isDone(ack.MessageID)))
			text, done := answer(t, frames, ack.MessageID)
			code, msg := done.doneError()
			if done.Status != tt.status || code != tt.code {
				t.Fatalf("done %s, want status %s code %q", done.raw, tt.status, tt.code)
			}
			if tt.status == "error" && len(msg) < 10 {
				t.Fatalf("error message %q is not a clear explanation", msg)
			}
			if tt.partial && (text == "" || !strings.HasPrefix(fakeai.ExpectedText(fakeai.Config{Tokens: 20}), text)) {
				t.Fatalf("partial text %q", text)
			}
			if got := e.fake.Requests(); got != tt.requests {
				t.Fatalf("%d upstream requests, want %d", got, tt.requests)
			}
			stored := e.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
			if string(stored.Status) != tt.status || stored.Content != text {
				t.Fatalf("stored %q (%s), streamed %q (%s)", stored.Content, stored.Status, text, tt.status)
			}
			if tt.status == "error" && stored.Error == "" {
				t.Fatalf("stored answer has no error text")
			}
			// Exactly one done, and the server still answers.
			a.quiet(50 * time.Millisecond)
			e.rest(t, "", http.MethodGet, "/healthz", nil, http.StatusOK, nil)
			// After an answer that failed before its first token, the
			// prompt joins the two user messages (roles alternate), so the
			// fake upstream reads the first one's marker too: the next
			// message's marker, later, overrides its fault.
			a.write(sendFrame("next", ack.ConversationID, "now works [[fake fault=none]]"))
			next := live(a.until(func(f frame) bool { return f.Type == "ack" }))
			_, ok := answer(t, live(a.until(isDone(next[len(next)-1].MessageID))), next[len(next)-1].MessageID)
			if ok.Status != string(persistence.StatusComplete) {
				t.Fatalf("the next answer ended %s", ok.raw)
			}
		})
	}
}
