package api_test

import (
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestExportClosesTheOpenFence: an answer that ends inside a code fence
// (cut off, stopped) gets the fence that closes it, so it cannot swallow
// the rest of the Markdown export: a fence of backticks or tildes, closed
// only by a line of the same character at least as long with nothing
// after it (CommonMark), never by a shorter one or one with an info
// string. Before, any line starting with three backticks toggled the
// fence and the closing fence was always three backticks: a cut-off
// answer inside a ```` or ~~~ fence, or after a ```python line inside
// one, was left open and took the following messages into its code.
func TestExportClosesTheOpenFence(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	for _, tc := range []struct {
		name, text, closing string
	}{
		{"backticks, open", "```go\nfunc main() {", "```\n"},
		{"backticks, closed", "```go\nx\n```", ""},
		{"tildes, open", "~~~\ncode", "~~~\n"},
		{"four backticks around three, open", "````markdown\n```python\nprint()", "````\n"},
		{"a shorter fence does not close", "````\n```\nstill code", "````\n"},
		{"an info string does not close", "```\ncode\n```python\nmore", "```\n"},
		{"tildes do not close backticks", "```\ncode\n~~~", "```\n"},
		{"inline code is no fence", "``` `x` ``` and on", ""},
		{"a longer fence closes", "```\ncode\n`````  ", ""},
		{"indented fence, open", "  ~~~~\nx", "~~~~\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := exportedAnswer(t, e, owner, tc.text)
			want := "### 2. Assistant\n\n" + tc.text + "\n" + tc.closing + "\n"
			if !strings.HasSuffix(string(body), want) {
				t.Fatalf("export ends\n%q\nwant\n%q", body[max(0, len(body)-len(want)-20):], want)
			}
		})
	}
}

// exportedAnswer stores, in a new conversation of owner, a question and a
// complete answer of text, and returns the conversation's Markdown export.
func exportedAnswer(t *testing.T, e *apiEnv, owner, text string) []byte {
	t.Helper()
	c, ids := e.conversation(t, owner, "q")
	m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: ids[0], Role: persistence.RoleAssistant,
		Content: text, Status: persistence.StatusComplete}
	if err := e.store.InsertMessage(t.Context(), &m); err != nil {
		t.Fatal(err)
	}
	_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
	return body
}
